"""``overspec quickstart``: the study in miniature, offline, on real weights and real images."""
