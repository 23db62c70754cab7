"""RELION external-reconstruct plugin.

``relion_refine --external_reconstruct`` calls ``spisonet-relion <root>_external_reconstruct.star``
once per class/body/half and iteration. Modules, one per stage:

- :mod:`.reconstruction`: RELION's reconstruction from the back-projected arrays (pure numpy/torch);
- :mod:`.call`: what this call is (half/joined/class/body, iteration, output root);
- :mod:`.metadata`: the previous iteration's optimiser/sampling/model STAR files;
- :mod:`.settings`: ``ISONET_*`` environment variables, validated;
- :mod:`.sync`: file rendezvous of the two half processes;
- :mod:`.correction`: whitening, 3D FSC, training and filtering of the two half-maps;
- :mod:`.wrapper`: the program (``main``): plain map, correction, fallback, logging.
"""
