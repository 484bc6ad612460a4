"""Real images written in the layouts overspec reads: scikit-image's LFW crops, scikit-learn's digits,
insightface .bin pairs and MAD/PAD dataset folders (real faces, simulated attacks)."""

from __future__ import annotations

import io
import json
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "examples" / "images"
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def lfw_faces(n: int, offset: int = 0, size: int = 64):
    """Real face crops from scikit-image's lfw_subset (no identity labels), upscaled RGB PIL images."""
    from skimage.data import lfw_subset

    faces = lfw_subset()[offset : offset + n]  # the first 100 entries are faces
    return [
        Image.fromarray((f * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC).convert("RGB") for f in faces
    ]


def views(face, rng, n: int):
    """``n`` views of one photo (the quickstart's rotation, shift and brightness changes): a pseudo-identity's
    images, since lfw_subset carries no identity labels."""
    from overspec.quickstart.data import view

    return [view(face, rng) for _ in range(n)]


def digit_images(per_class: int, offset: int = 0):
    """Real handwritten digits (scikit-learn's bundled set) as 32x32 RGB PIL images with labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    out = []
    for label in range(10):
        rows = [i for i, t in enumerate(digits.target) if t == label][offset : offset + per_class]
        for i in rows:
            pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)
            out.append((Image.fromarray(pixels).resize((32, 32), Image.BICUBIC).convert("RGB"), label))
    return out


def write_webdataset(root: Path, per_class: int = 6, *, classnames=DIGIT_NAMES, labels=None) -> None:
    """CLIP_benchmark's webdataset layout: ``train/`` and ``test/`` tar shards of ``KEY.png`` + ``KEY.cls``, and
    ``classnames.txt``. ``labels``: relabel the digits (sample i gets ``labels[i % len(labels)]``)."""
    import tarfile

    for split, offset in (("train", 0), ("test", 40)):
        (root / split).mkdir(parents=True)
        samples = digit_images(per_class, offset)
        if labels is not None:
            samples = [(image, labels[i % len(labels)]) for i, (image, _) in enumerate(samples)]
        for shard in range(2):
            with tarfile.open(root / split / f"{shard}.tar", "w") as tar:
                for i, (image, label) in enumerate(samples[shard::2]):
                    key = f"s{shard}_{i:05d}"
                    for name, payload in ((f"{key}.png", png_bytes(image)), (f"{key}.cls", str(label).encode())):
                        info = tarfile.TarInfo(name)
                        info.size = len(payload)
                        tar.addfile(info, io.BytesIO(payload))
    (root / "classnames.txt").write_text("\n".join(classnames))
    (root / "zeroshot_classification_templates.txt").write_text("a photo of the number: {c}.\n")


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_bin(path, n_pairs=40):
    """Genuine pairs: a face and a brightened, shifted copy of it; impostor pairs: two different faces.
    (lfw_subset has no identity labels, so genuine pairs are made from the same photo.)"""
    faces = lfw_faces(60)
    bins, issame = [], []
    for i in range(n_pairs):
        a = faces[i % 60]
        if i % 2 == 0:
            b = ImageEnhance.Brightness(a).enhance(1.2).rotate(3)
        else:
            b = faces[(i * 7 + 13) % 60]
        bins += [jpeg_bytes(a), jpeg_bytes(b)]
        issame.append(i % 2 == 0)
    with open(path, "wb") as f:
        pickle.dump((bins, issame), f, protocol=2)
    return bins, np.array(issame)


def save(image, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def morph(a, b):
    """A simulated morph: the average of two aligned face photos (real bytes, synthetic attack)."""
    return Image.blend(a, b, 0.5)


def recapture(face):
    """A simulated print/replay: blur, reduced contrast, a colour cast."""
    out = face.filter(ImageFilter.GaussianBlur(1.2)).point(lambda v: int(40 + 0.7 * v))
    r, g, b = out.split()
    return Image.merge("RGB", (r, g.point(lambda v: int(v * 0.9)), b))


@lru_cache(maxsize=1)
def faces():
    return lfw_faces(40)


def build_attack_layout(layout, root):
    """Write a small dataset in ``layout``; return the expected (n_bonafide, attack types, splits)."""
    f = faces()
    if layout == "smdd":
        for i in range(4):
            save(f[i], root / "o25k_bf_t" / f"img{i:06d}.png")
            save(morph(f[i], f[i + 1]), root / "m15k_t" / f"morphed_img{i:06d}_img{i + 1:06d}.png")
        return 4, {"smdd"}, {"train"}
    if layout == "syn_mad22":
        for i in range(3):
            save(f[i], root / "BonaFide" / f"00{i}_03.jpg")
            for method in ("FaceMorpher", "OpenCV", "MorDIFF"):
                save(morph(f[i], f[i + 3]), root / method / f"00{i}_03-vs-00{i + 3}_03.jpg")
        return 3, {"FaceMorpher", "OpenCV", "MorDIFF"}, {"test"}
    if layout == "frll_morphs":
        for i in range(3):
            save(f[i], root / "raw" / f"00{i}_03.jpg")
            save(morph(f[i], f[i + 1]), root / "morph_amsl" / f"00{i}_00{i + 1}.jpg")
            save(morph(f[i], f[i + 2]), root / "morph_stylegan" / f"00{i}_00{i + 2}.jpg")
        return 3, {"amsl", "stylegan"}, {"test"}
    if layout == "oulu_npu":
        for folder in ("Train_files", "Dev_files", "Test_files"):
            for access in (1, 2, 4):
                video = f"1_1_0{access}_{access}"
                for frame in range(2):
                    face = f[access + frame]
                    save(face if access == 1 else recapture(face), root / folder / video / f"{frame}.png")
        return 6, {"print", "replay"}, {"train", "dev", "test"}
    if layout == "casia_fasd":
        for split in ("train_release", "test_release"):
            for stem in ("1", "HR_1", "3", "6", "HR_4"):
                save(f[0] if stem in ("1", "HR_1") else recapture(f[1]), root / split / "5" / f"{stem}_frame0.png")
        return 4, {"warped_photo", "cut_photo", "video_replay"}, {"train", "test"}
    if layout == "replay_attack":
        for split in ("train", "devel", "test"):
            save(f[0], root / split / "real" / "client001_session01_webcam_authenticate_adverse_1" / "0.png")
            save(
                recapture(f[1]),
                root / split / "attack" / "fixed" / "attack_print_client001_session01_highdef_photo_adverse" / "0.png",
            )
            save(
                recapture(f[2]),
                root / split / "attack" / "hand" / "attack_mobile_client001_session01_mobile_video_adverse" / "0.png",
            )
        return 3, {"print", "mobile"}, {"train", "dev", "test"}
    if layout == "msu_mfsd":
        (root).mkdir(parents=True, exist_ok=True)
        (root / "train_sub_list.txt").write_text("002\n")
        (root / "test_sub_list.txt").write_text("003\n")
        for client in ("002", "003"):
            save(f[0], root / "scene01" / "real" / f"real_client{client}_android_SD_scene01" / "0.png")
            save(
                recapture(f[1]),
                root / "scene01" / "attack" / f"attack_client{client}_android_SD_printed_photo_scene01_0.png",
            )
        return 2, {"printed_photo"}, {"train", "test"}
    if layout == "celeba_spoof":
        labels = {}
        for split in ("train", "test"):
            for i, live in enumerate((True, False, True)):
                relative = f"Data/{split}/{i}/{'live' if live else 'spoof'}/00000{i}.jpg"
                save(f[i] if live else recapture(f[i]), root / relative)
                labels[relative] = [0] * 40 + [0 if live else 3, 0, 0, 0 if live else 1]
            (root / "metas" / "intra_test").mkdir(parents=True, exist_ok=True)
            (root / "metas" / "intra_test" / f"{split}_label.json").write_text(json.dumps(labels))
            labels = {}
        return 4, {"a4"}, {"train", "test"}
    raise AssertionError(layout)


def write_video(path: Path, frames) -> Path:
    """``frames`` (PIL RGB images of one size) as a video written by PyAV, losslessly (the PNG codec), so the
    frames decoded back are these pixels exactly."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = frames[0].size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.asarray(frame), format="rgb24")))
        container.mux(stream.encode())
    return path


def write_oulu_videos(root: Path, per_split: int = 3, n_frames: int = 9) -> dict[str, list]:
    """An OULU-NPU release in miniature: ``Train_files/`` and ``Test_files/`` of ``P_S_UU_A.avi`` videos (access
    1 real, 2 print, 4 replay) whose frames are real LFW faces moving a little (attacks recaptured). Returns each
    written video's frames by path."""
    rng = np.random.default_rng(0)
    written, face = {}, 0
    for folder in ("Train_files", "Test_files"):
        for user in range(1, per_split + 1):
            for access in (1, 2, 4):
                source = faces()[face % len(faces())]
                face += 1
                frames = views(source, rng, n_frames)
                if access != 1:
                    frames = [recapture(f) for f in frames]
                path = root / folder / f"1_1_{user:02d}_{access}.avi"
                write_video(path, frames)
                written[path] = frames
    return written


def place_face(face: Image.Image, angle: float, scale: float, offset) -> tuple[Image.Image, np.ndarray]:
    """Put a 112 px face into a 250 px canvas by a known similarity; return the canvas and where the
    ArcFace landmarks of the face went."""
    from overspec.data.ijb import ARCFACE_112

    theta = np.deg2rad(angle)
    forward = np.array(
        [
            [scale * np.cos(theta), -scale * np.sin(theta), offset[0]],
            [scale * np.sin(theta), scale * np.cos(theta), offset[1]],
            [0, 0, 1],
        ]
    )
    inverse = np.linalg.inv(forward)
    canvas = face.transform(
        (250, 250), Image.Transform.AFFINE, data=tuple(inverse[:2].ravel()), resample=Image.Resampling.BICUBIC
    )
    landmarks = (forward[:2, :2] @ ARCFACE_112.T).T + forward[:2, 2]
    return canvas, landmarks


def write_ijb(root, faces):
    """IJB-C in insightface's layout: per face, template 100+i (two images in two media) and 200+i (a third)."""
    (root / "meta").mkdir(parents=True)
    (root / "loose_crop").mkdir()
    rows, points = [], []
    rng = np.random.default_rng(0)
    for i, face in enumerate(faces):
        for copy in range(3):  # template 100+i: two images in two media; template 200+i: a third image
            canvas, landmarks = place_face(face, rng.uniform(-20, 20), rng.uniform(0.9, 1.4), rng.uniform(40, 80, 2))
            name = f"{i}_{copy}.jpg"
            canvas.save(root / "loose_crop" / name, quality=95)
            rows.append(f"{name} {100 + i if copy < 2 else 200 + i} {1000 + 3 * i + copy}")
            points.append(name + " " + " ".join(f"{v:.3f}" for v in landmarks.ravel()) + f" {rng.uniform(0.5, 1):.3f}")
    (root / "meta" / "ijbc_face_tid_mid.txt").write_text("\n".join(rows) + "\n")
    (root / "meta" / "ijbc_name_5pts_score.txt").write_text("\n".join(points) + "\n")
    # genuine: the same face in both templates, and two pairs of different faces labelled genuine (so that not
    # every genuine pair outscores every impostor pair)
    genuine = {(i, i) for i in range(len(faces))} | {(0, 1), (2, 3)}
    pairs = [f"{100 + i} {200 + j} {int((i, j) in genuine)}" for i in range(len(faces)) for j in range(len(faces))]
    (root / "meta" / "ijbc_template_pair_label.txt").write_text("\n".join(pairs) + "\n")
