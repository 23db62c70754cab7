"""The one set of words read as true/false, on the command line and in ``ISONET_*`` variables."""

from __future__ import annotations

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", "f", "none"})


def parse_bool(text: str) -> bool:
    """Read ``text`` as a boolean (case- and space-insensitive).

    Raises
    ------
    ValueError
        ``text`` is none of :data:`TRUE_WORDS` / :data:`FALSE_WORDS`; the caller names the
        option or variable in its own message.
    """
    value = str(text).strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(f"{text!r}: expected True or False")
