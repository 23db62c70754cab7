"""Exceptions shared by the whole package.

The command-line edges (``spisonet.py`` and the RELION wrapper) turn an :class:`InputError`
into one line on stderr and exit code 2, without a traceback.
"""


class InputError(Exception):
    """Bad user input: a missing or malformed file, inconsistent maps, an invalid option.

    The message must be one line that names the file (or option) and the problem.
    """
