"""Solid-on-solid thin-film growth: the KMC engine and the ``LatticeGrowth-v0`` environment."""
