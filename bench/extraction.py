"""Feature extraction against its ceiling, in one run: the image tower alone on ready tensors (same batch size,
same threads) vs ``extract_features`` on JPEG files (decode, resize, collate, forward), with DataLoader workers
as overspec sizes them and with none, at several batch sizes (a CPU's best is smaller than a GPU's); and where the
time goes (decode + preprocess alone, forward alone).

    python bench/extraction.py [--images 400] [--arch ViT-B-32] [--batches 16,64]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def photos(folder: Path, n: int) -> list[Path]:
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(0)
    sources = [Image.fromarray(getattr(skimage.data, s)()).convert("RGB") for s in ("astronaut", "coffee", "chelsea")]
    paths = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo = sources[i % len(sources)]
        size = int(rng.integers(200, min(photo.size)))
        x, y = int(rng.integers(0, photo.width - size + 1)), int(rng.integers(0, photo.height - size + 1))
        path = folder / f"{i:04d}.jpg"
        photo.crop((x, y, x + size, y + size)).save(path, quality=90)
        paths.append(path)
    return paths


def main() -> None:
    import open_clip

    from overspec.data import ImageFiles
    from overspec.features import extract_features
    from overspec.features.extract import default_batch_size, default_workers
    from overspec.models import load_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--batches", default="16,64", help="batch sizes to compare (overspec's CPU default: 16)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="overspec-extract-"))
    paths = photos(root / "photos", args.images)
    torch.manual_seed(0)
    torch.save(open_clip.create_model(args.arch, pretrained=None).state_dict(), root / "model.pt")
    encoder = load_model({"family": "openai_clip", "weights": str(root / "model.pt")})
    images = ImageFiles(paths)
    transform = encoder.preprocess.transform()
    threads = torch.get_num_threads()

    start = time.perf_counter()
    ready = [transform(images.load(i)) for i in range(len(images))]
    decode = len(images) / (time.perf_counter() - start)
    print(
        f"{len(images)} JPEGs, {args.arch} random init, {threads} torch threads, {os.cpu_count()} cores, "
        f"default batch on this device {default_batch_size(encoder.device)}"
    )
    print(f"decode + preprocess alone, one process        {decode:6.1f} img/s")
    for batch_size in (int(b) for b in args.batches.split(",")):
        batches = [torch.stack(ready[i : i + batch_size]) for i in range(0, len(ready), batch_size)]
        with torch.inference_mode():
            encoder.encode_image(batches[0])  # warm-up
            start = time.perf_counter()
            for batch in batches:
                encoder.encode_image(batch)
            ceiling = len(images) / (time.perf_counter() - start)
        print(f"batch {batch_size:3d}: ceiling (tower alone on ready tensors) {ceiling:6.1f} img/s")
        for workers in (default_workers(), 0):
            start = time.perf_counter()
            extract_features(encoder, images, cache=False, batch_size=batch_size, num_workers=workers, progress=False)
            rate = len(images) / (time.perf_counter() - start)
            print(
                f"batch {batch_size:3d}: extract_features, {workers} loader workers   {rate:6.1f} img/s   "
                f"{100 * rate / ceiling:5.1f} % of this batch's ceiling"
            )


if __name__ == "__main__":
    main()
