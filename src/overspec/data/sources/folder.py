"""Class-per-folder directories: ``train/<class>/*``, ``test/<class>/*`` (optional ``val/``), with optional
``classnames.txt`` (one name per line, in sorted folder order) and ``templates.txt`` (one ``{c}`` template
per line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from overspec.data.images import ImageFiles, image_files
from overspec.data.labelled import LabelledSplit
from overspec.errors import DataError

SPLITS = ("train", "val", "test")


class FolderSource:
    name = "folder"

    @staticmethod
    def detect(root: Path) -> bool:
        return any((root / s).is_dir() and any(p.is_dir() for p in (root / s).iterdir()) for s in SPLITS)

    @staticmethod
    def read(root: Path) -> tuple[dict[str, LabelledSplit], list[str], list[str] | None]:
        """``(splits, classnames, templates or None)``."""
        splits, folders = {}, None
        for split in SPLITS:
            if not (root / split).is_dir():
                continue
            classes = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
            if folders is None:
                folders = classes
            elif set(classes) - set(folders):
                raise DataError(
                    f"{root / split} has class folders absent from the first split: "
                    f"{sorted(set(classes) - set(folders))[:5]}"
                )
            paths, labels = [], []
            for index, name in enumerate(folders):
                folder = root / split / name
                files = image_files(folder) if folder.is_dir() else []
                paths += files
                labels += [index] * len(files)
            if not paths:
                raise DataError(f"{root / split} holds no images in its class folders")
            splits[split] = LabelledSplit(ImageFiles(paths, root=root), np.array(labels))
        classnames = [n.replace("_", " ") for n in folders]
        names_file = root / "classnames.txt"
        if names_file.exists():
            classnames = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
            if len(classnames) != len(folders):
                raise DataError(
                    f"{names_file} lists {len(classnames)} names but there are {len(folders)} class folders"
                )
        templates = read_templates(root / "templates.txt")
        return splits, classnames, templates


def read_templates(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    templates = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    bad = [t for t in templates if "{c}" not in t]
    if bad:
        raise DataError(f"{path}: every template needs the placeholder {{c}}; {bad[0]!r} lacks it")
    return templates
