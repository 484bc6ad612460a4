"""Image sources, the dataset catalog and ``load_dataset``."""

from overspec.data.images import ImageFiles, ImageSource, list_images

__all__ = ["ImageFiles", "ImageSource", "catalog", "list_images", "load_dataset"]


def __getattr__(name: str):
    # catalog and loaders on first use: keeps `import overspec.data` free of pydantic/yaml work
    if name == "catalog":
        from overspec.data.catalog import catalog

        return catalog
    if name == "load_dataset":
        from overspec.data.loading import load_dataset

        return load_dataset
    raise AttributeError(name)
