"""spIsoNet: correct preferred-orientation anisotropy in single-particle cryo-EM maps."""

from spIsoNet._version import __version__

__all__ = ["__version__"]
