"""RELION external-reconstruct plugin.

``relion_refine --external_reconstruct`` calls ``spisonet-relion <root>_external_reconstruct.star``
once per class/body/half and iteration. Modules, one per stage:

- :mod:`.reconstruction`: RELION's reconstruction from the back-projected arrays (pure numpy);
- :mod:`.call`: what this call is (half/joined/class/body, iteration, output root) and its STAR;
- :mod:`.metadata`: the previous iteration's optimiser/sampling/model STAR files;
- :mod:`.settings`: ``ISONET_*`` environment variables, validated, and the engine settings;
- :mod:`.resolution`: RELION's resolution and the truncated FSC, and which one is used;
- :mod:`.decision`: the start conditions (outcome correct / skip / fallback);
- :mod:`.sync`: file rendezvous of the two half processes;
- :mod:`.modes`: the joint / solo / receive corrections;
- :mod:`.correction`: whitening, 3D FSC, training and filtering of the half-maps;
- :mod:`.wrapper`: the program (``main``): plain map, decision, correction, fallback, logging.

File formats live in :mod:`spIsoNet.io` (``star``, ``relion_arrays``).
"""
