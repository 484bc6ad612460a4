"""Batched feature extraction and the content-addressed feature cache."""

from overspec.features.cache import FeatureCache
from overspec.features.extract import extract_features

__all__ = ["FeatureCache", "extract_features"]
