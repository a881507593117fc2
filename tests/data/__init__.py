"""Fake data sets for the tests, in their real on-disk layouts (as TorchGeo keeps its ``tests/data/<name>/``).

``<name>/data.py`` writes one tiny data set into a folder, from a test (``make_<name>(root)``,
returning ``root``) or as a script::

    python tests/data/eurosat/data.py OUT_DIR       # likewise bigearthnet, oscd

``sentinel2.py`` holds what they share: the band levels that let a test read the band order back
from the data (:func:`~data.sentinel2.band_from_value`), the texture, and the GeoTIFF writer.
Tests import them as ``data.<name>.data`` (pytest puts ``tests/`` on ``sys.path``).
"""
