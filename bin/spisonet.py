#!/usr/bin/env python3
"""Launcher for ``spisonet.py`` that also works from a source checkout without installing."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spIsoNet.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
