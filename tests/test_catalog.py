"""Every catalog YAML validates; the study's 14 datasets are there; a broken entry is a clear error."""

from __future__ import annotations

import pytest

from overspec.data.catalog import HEADLINE_METRICS, catalog, parse_entry
from overspec.errors import ConfigError

STUDY = {
    "food101",
    "cifar10",
    "cifar100",
    "sun397",
    "cars",
    "fgvc_aircraft",
    "dtd",
    "mnist",
    "flowers",
    "stl10",
    "gtsrb",
    "country211",
    "renderedsst2",
    "imagenetv2",
}
KNOWN_SIZES = {
    "cifar10": 10,
    "cifar100": 100,
    "food101": 101,
    "sun397": 397,
    "cars": 196,
    "fgvc_aircraft": 100,
    "dtd": 47,
    "mnist": 10,
    "flowers": 102,
    "stl10": 10,
    "gtsrb": 43,
    "country211": 211,
    "renderedsst2": 2,
    "imagenetv2": 1000,
    "imagenet1k": 1000,
    "pets": 37,
    "eurosat": 10,
    "svhn": 10,
    "pcam": 2,
    "resisc45": 45,
    "fer2013": 7,
    "voc2007": 20,
    "imagenet-a": 200,
    "imagenet-r": 200,
    "imagenet_sketch": 1000,
    "caltech101": 102,
}


def test_every_entry_is_well_formed():
    entries = [catalog().get(name) for name in catalog()]
    assert {e.name for e in entries if e.in_study} == STUDY
    for entry in entries:
        assert len(entry.classnames) == entry.num_classes == KNOWN_SIZES[entry.name], entry.name
        assert all("{c}" in t for t in entry.templates) and entry.templates
        assert entry.headline_metric in HEADLINE_METRICS and entry.higher_is_better
        assert "test" in entry.splits and entry.sources.webdataset.startswith("clip-benchmark/wds_")
    mpc = {e.name for e in entries if e.headline_metric == "mean_per_class_recall"}
    assert mpc == {"fgvc_aircraft", "pets", "caltech101", "flowers"}  # as in the CLIP paper
    assert "train" not in catalog().get("imagenetv2").splits
    assert len(catalog().get("imagenet1k").templates) == 80
    assert catalog().get("sun397").seeded_split is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\ntitle: X\nnum_classes: 3\nclassnames: [a, b]\ntemplates: ['{c}']",
            "key '(top level)': num_classes is 3 but 2 classnames",
        ),
        (
            "name: x\ntitle: X\nnum_classes: 2\nclassnames: [a, b]\ntemplates: ['a photo']",
            "key 'templates': every template needs the placeholder",
        ),
        (
            "name: x\ntitle: X\nnum_classes: 2\nclassnames: [a, b]\ntemplates: ['{c}']\nheadline_metric: top3",
            "key 'headline_metric': Input should be 'acc1' or 'mean_per_class_recall'",
        ),
        ("name: [", "not valid YAML"),
    ],
)
def test_broken_entries_name_the_file_and_key(text, message):
    with pytest.raises(ConfigError, match="^catalog/x.yaml: " + message.replace("(", r"\(").replace(")", r"\)")):
        parse_entry(text, origin="catalog/x.yaml")
