"""Where a dataset's images come from. Each source reads one on-disk layout; ``SOURCES`` finds the one a
folder holds."""

from __future__ import annotations

from overspec.registry import Registry

SOURCES: Registry = Registry("dataset source")
SOURCES.register("webdataset", "overspec.data.sources.webdataset:WebDatasetSource")
SOURCES.register("huggingface", "overspec.data.sources.huggingface:HuggingFaceSource")
SOURCES.register("folder", "overspec.data.sources.folder:FolderSource")
SOURCES.register("torchvision", "overspec.data.sources.torchvision_source:TorchvisionSource")
