"""Command-line interface (``spisonet.py``)."""
