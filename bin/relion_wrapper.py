#!/usr/bin/env python3
"""RELION external-reconstruct plugin launcher.

Set ``RELION_EXTERNAL_RECONSTRUCT_EXECUTABLE="python /path/to/bin/relion_wrapper.py"`` (or
``spisonet-relion`` when installed); RELION appends the STAR path.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spIsoNet.relion.wrapper import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
