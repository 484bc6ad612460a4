"""Image sources. Every source yields images by index and a fingerprint of what it holds."""

from overspec.data.images import ImageFiles, list_images

__all__ = ["ImageFiles", "list_images"]

from overspec.registry import Registry  # noqa: E402

DATASETS: Registry = Registry("dataset")
"""Catalog datasets by name (filled from ``data/catalog/*.yaml``)."""
