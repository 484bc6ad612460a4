"""overspec: what a vision foundation model loses, and gains, when it is fine-tuned for biometrics."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("overspec")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "evaluate", "extract_features", "load_model"]


def __getattr__(name: str):
    # The public API is imported on first use, so `import overspec` stays light (no torch).
    if name == "load_model":
        from overspec.models import load_model

        return load_model
    if name == "evaluate":
        from overspec.evaluation import evaluate

        return evaluate
    if name == "extract_features":
        from overspec.features import extract_features

        return extract_features
    raise AttributeError(f"module 'overspec' has no attribute {name!r}")
