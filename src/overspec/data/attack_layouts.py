"""Readers for the layouts the public MAD/PAD datasets ship in, each producing the protocol table.

PAD datasets are videos: these readers take the videos as released (frames are then sampled with PyAV,
``data/video.py``) or, like the public code (SSDG, FLIP, FoundPAD), frames already extracted to images, in a
folder per video or as files whose names start with the video's name; the video's name carries the label, and
frames of one video share its ``video`` id (scores are averaged per video). Layouts and naming follow the
datasets' releases:

- ``smdd``: ``m15k_t/`` morphs, ``o25k_bf_t/`` bona fide (train release; one attack type).
- ``syn_mad22``: ``BonaFide/`` + one folder per morphing method (FaceMorpher, MIPGAN_I, MIPGAN_II, OpenCV,
  Webmorph; a ``MorDIFF/`` folder beside them joins as one more method). Test only.
- ``frll_morphs``: ``morph_<method>/`` folders + bona fide in ``raw/`` (or ``bonafide/``). Test only.
- ``oulu_npu``: ``Train_files/``, ``Dev_files/``, ``Test_files/``; video ``P_S_UU_A``: access A = 1 real,
  2-3 print, 4-5 replay.
- ``casia_fasd``: ``train_release/``, ``test_release/``; videos 1, 2, HR_1 real; 3, 4, HR_2 warped photo;
  5, 6, HR_3 cut photo; 7, 8, HR_4 video replay.
- ``replay_attack``: ``{train,devel,test}/real/`` and ``.../attack/{fixed,hand}/``; type print / highdef /
  mobile from ``attack_<type>_client...``.
- ``msu_mfsd``: ``real/`` and ``attack/`` (type printed_photo, ipad_video, iphone_video) with
  ``train_sub_list.txt`` / ``test_sub_list.txt`` naming the clients of each split.
- ``celeba_spoof``: ``Data/{train,test}/<id>/{live,spoof}/*.jpg`` with ``metas/intra_test/{train,test}_label.json``
  (entry 43: 0 live, 1 spoof; entry 40: the spoof type), the JSON being authoritative.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from overspec.data.attack_samples import AttackSample
from overspec.data.images import IMAGE_SUFFIXES
from overspec.data.video import VIDEO_SUFFIXES, is_video
from overspec.errors import DataError
from overspec.registry import Registry

LAYOUTS: Registry[Callable[[Path], list[AttackSample]]] = Registry("attack dataset layout")
SYN_MAD_METHODS = ("FaceMorpher", "MIPGAN_I", "MIPGAN_II", "OpenCV", "Webmorph", "MorDIFF")
CELEBA_SPOOF_TYPES = (
    "live",
    "photo",
    "poster",
    "a4",
    "face_mask",
    "upper_body_mask",
    "region_mask",
    "pc",
    "pad",
    "phone",
    "3d_mask",
)

MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES  # what a PAD/MAD folder may hold


def images_under(folder: Path) -> list[Path]:
    """Image and video files under ``folder``, in sorted path order."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in MEDIA_SUFFIXES)


def _need(folder: Path, what: str) -> Path:
    if not folder.is_dir():
        raise DataError(f"{folder} does not exist: expected {what}")
    return folder


@LAYOUTS.register("smdd")
def read_smdd(root: Path) -> list[AttackSample]:
    morphs, bonafide = (
        images_under(_need(root / "m15k_t", "SMDD morphs")),
        images_under(_need(root / "o25k_bf_t", "SMDD bona fide")),
    )
    return [AttackSample(p, True, "", "train") for p in bonafide] + [
        AttackSample(p, False, "smdd", "train") for p in morphs
    ]


@LAYOUTS.register("syn_mad22")
def read_syn_mad22(root: Path) -> list[AttackSample]:
    samples = [AttackSample(p, True, "", "test") for p in images_under(_need(root / "BonaFide", "bona fide images"))]
    found = [m for m in SYN_MAD_METHODS if (root / m).is_dir()]
    if not found:
        raise DataError(f"{root}: none of the morph folders {', '.join(SYN_MAD_METHODS)}")
    for method in found:
        samples += [AttackSample(p, False, method, "test") for p in images_under(root / method)]
    return samples


@LAYOUTS.register("frll_morphs")
def read_frll_morphs(root: Path) -> list[AttackSample]:
    bonafide_dir = next((root / d for d in ("raw", "bonafide", "BonaFide") if (root / d).is_dir()), None)
    if bonafide_dir is None:
        raise DataError(f"{root}: put the FRLL bona fide images in {root / 'raw'}")
    samples = [AttackSample(p, True, "", "test") for p in images_under(bonafide_dir)]
    for folder in sorted(root.glob("morph_*")):
        samples += [AttackSample(p, False, folder.name.removeprefix("morph_"), "test") for p in images_under(folder)]
    return samples


def _by_video_name(
    root: Path, split_dirs: dict[str, str], pattern: str, classify: Callable[[re.Match], str | None]
) -> list[AttackSample]:
    """Frames whose relative path matches ``pattern``; ``classify`` gives "" (bona fide) or an attack type."""
    regex = re.compile(pattern)
    samples = []
    for folder, split in split_dirs.items():
        for path in images_under(root / folder):
            relative = str(path.relative_to(root / folder))
            match = regex.search(relative)
            if match is None:
                raise DataError(f"{path}: cannot tell the video from its name (expected {pattern})")
            kind = classify(match)
            video = f"{folder}/{relative[: match.end()]}"
            samples.append(AttackSample(path, kind == "", kind or "", split, video=video))
    if not samples:
        raise DataError(f"{root}: no frames under {', '.join(split_dirs)}")
    return samples


@LAYOUTS.register("oulu_npu")
def read_oulu_npu(root: Path) -> list[AttackSample]:
    kinds = {"1": "", "2": "print", "3": "print", "4": "replay", "5": "replay"}
    return _by_video_name(
        root,
        {"Train_files": "train", "Dev_files": "dev", "Test_files": "test"},
        r"(?:^|/)(\d)_(\d)_(\d{2})_([1-5])(?=[_./]|$)",
        lambda m: kinds[m.group(4)],
    )


@LAYOUTS.register("casia_fasd")
def read_casia_fasd(root: Path) -> list[AttackSample]:
    kinds = {
        "1": "",
        "2": "",
        "HR_1": "",
        "3": "warped_photo",
        "4": "warped_photo",
        "HR_2": "warped_photo",
        "5": "cut_photo",
        "6": "cut_photo",
        "HR_3": "cut_photo",
        "7": "video_replay",
        "8": "video_replay",
        "HR_4": "video_replay",
    }
    return _by_video_name(
        root,
        {"train_release": "train", "test_release": "test"},
        r"^\d+/(HR_[1-4]|[1-8])(?=[_./]|$)",
        lambda m: kinds[m.group(1)],
    )


@LAYOUTS.register("replay_attack")
def read_replay_attack(root: Path) -> list[AttackSample]:
    def kind(m: re.Match) -> str:
        return "" if m.group(1) == "real" else m.group(2)

    return _by_video_name(
        root,
        {"train": "train", "devel": "dev", "test": "test"},
        r"^(real|attack)/(?:(?:fixed|hand)/)?(?:attack_(print|highdef|mobile)_)?",
        kind,
    )


@LAYOUTS.register("msu_mfsd")
def read_msu_mfsd(root: Path) -> list[AttackSample]:
    lists = {}
    for split in ("train", "test"):
        listing = root / f"{split}_sub_list.txt"
        if not listing.exists():
            raise DataError(f"{listing} does not exist: MSU-MFSD's list of {split} clients")
        lists[split] = {int(line.strip()) for line in listing.read_text().split() if line.strip()}
    base = root / "scene01" if (root / "scene01").is_dir() else root
    samples = []
    for label in ("real", "attack"):
        for path in images_under(_need(base / label, f"MSU-MFSD {label} frames")):
            client = re.search(r"client0*(\d+)", path.name) or re.search(r"client0*(\d+)", str(path))
            if client is None:
                raise DataError(f"{path}: no client id (clientNNN) in its name")
            split = next((s for s, ids in lists.items() if int(client.group(1)) in ids), None)
            if split is None:
                raise DataError(
                    f"{path}: client {client.group(1)} is in neither train_sub_list.txt nor "
                    "test_sub_list.txt; add it to one"
                )
            found = re.search(r"(printed_photo|ipad_video|iphone_video)", str(path))
            kind = "" if label == "real" else (found.group(1) if found else "attack")
            samples.append(AttackSample(path, label == "real", kind, split, video=_msu_video(path)))
    return samples


def _msu_video(path: Path) -> str:
    """MSU-MFSD frames are named ``<video>_<frame>.<ext>`` or sit in a folder per video; a video is itself."""
    if is_video(path):
        return str(path)
    stem = re.sub(r"[_-]?(?:frame)?[_-]?\d+$", "", path.stem)
    return str(path.parent / stem) if stem and stem != path.stem else str(path.parent)


@LAYOUTS.register("celeba_spoof")
def read_celeba_spoof(root: Path) -> list[AttackSample]:
    samples = []
    for split in ("train", "test"):
        labels_file = root / "metas" / "intra_test" / f"{split}_label.json"
        if not labels_file.exists():
            continue
        try:
            labels = json.loads(labels_file.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{labels_file}: not valid JSON ({exc})") from None
        for relative, values in sorted(labels.items()):
            path = root / relative
            if not path.is_file():
                raise DataError(f"{labels_file}: image {relative} listed but {path} does not exist")
            live = int(values[43]) == 0
            samples.append(AttackSample(path, live, "" if live else CELEBA_SPOOF_TYPES[int(values[40])], split))
    if not samples:
        raise DataError(f"{root}: no metas/intra_test/train_label.json or test_label.json")
    return samples
