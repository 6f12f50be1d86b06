# cython: language_level=3, boundscheck=False, wraparound=False
"""The data path: IDX parsing, normalisation and augmentation (see datasets.py)."""
