"""The exceptions overspec raises on bad input. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class OverspecError(Exception):
    """Base of every error caused by input, configuration or environment (never by a bug)."""


class ConfigError(OverspecError):
    """A config or spec file is malformed: names the file, the key, what was expected and what came."""


class DataError(OverspecError):
    """A dataset or image file is missing, unreadable or in an unexpected layout."""


class ModelError(OverspecError):
    """A model cannot be built from its spec."""


class CheckpointError(ModelError):
    """A weights file is unsafe, unreadable or does not fit the architecture."""


class OfflineError(ModelError):
    """Weights are asked from a hub that cannot be reached; says which file to place where."""


class FetchError(OverspecError):
    """Data or weights cannot be fetched (hub unreachable, download failed, files that fail their checks): says
    what is missing, the command that fetches it and where the files go."""


class TrainingError(OverspecError):
    """Fine-tuning cannot go on (e.g. the loss diverged); says what to change and where the last checkpoint is."""


class CacheError(OverspecError):
    """The feature cache holds something inconsistent."""


class UnknownNameError(OverspecError, KeyError):
    """A registry lookup for a name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StorageError(OverspecError):
    """A file cannot be written (disk full, read-only, no permission): names the file and the fix."""
