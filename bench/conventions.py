"""How far each metric convention lands from overspec's ``iso`` rules on realistic synthetic score sets.

Verification: 6,000 LFW-style pairs (cosine scores, 2 decimals) and 200,000 IJB-style pairs (1 % genuine,
4 decimals). MAD: 3,000 bona fide-probability scores (3 decimals). PAD: 1,200 videos of 10 frames
(frame probabilities, 3 decimals). Each row: the median and largest absolute difference over 20 seeds, in
percentage points.

    python bench/conventions.py
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from overspec.metrics.conventions import CONVENTIONS, ScoreSet

SEEDS = range(20)


def verification(seed: int, n: int, genuine_share: float, decimals: int) -> ScoreSet:
    rng = np.random.default_rng(seed)
    genuine = rng.random(n) < genuine_share
    cosine = np.where(genuine, rng.normal(0.55, 0.15, n), rng.normal(0.1, 0.12, n))
    return ScoreSet.of("verification", np.clip(np.round(cosine, decimals), -1, 1), genuine)


def attack(seed: int, kind: str) -> ScoreSet:
    rng = np.random.default_rng(seed)
    if kind == "mad":
        bonafide = rng.random(3000) < 0.35
        logit = np.where(bonafide, rng.normal(1.5, 1.0, 3000), rng.normal(-1.5, 1.2, 3000))
        return ScoreSet.of("mad", np.round(1 / (1 + np.exp(-logit)), 3), bonafide)
    video_bonafide = rng.random(1200) < 0.3
    level = np.where(video_bonafide, rng.normal(1.2, 1.0, 1200), rng.normal(-1.2, 1.0, 1200))
    logit = np.repeat(level, 10) + rng.normal(0, 0.8, 12000)
    videos = np.repeat(np.array([f"v{i}" for i in range(1200)], dtype=object), 10)
    return ScoreSet.of("pad", np.round(1 / (1 + np.exp(-logit)), 3), np.repeat(video_bonafide, 10), videos=videos)


def compare(name: str, data: ScoreSet, keys: dict[str, str]) -> dict[str, float]:
    """``{label: convention - iso}`` for ``keys`` (convention key -> iso key), in percentage points."""
    convention, iso = CONVENTIONS.get(name), CONVENTIONS.get("iso")
    theirs = convention.metrics(data if convention.prepare is None else convention.prepare(data))
    ours = iso.metrics(replace(data, videos=None))  # iso scores every row
    return {label: 100 * (theirs[label] - ours[iso_key]) for label, iso_key in keys.items()}


def table(title: str, name: str, make, keys: dict[str, str]) -> None:
    found: dict[str, list[float]] = {}
    for seed in SEEDS:
        for label, value in compare(name, make(seed), keys).items():
            found.setdefault(label, []).append(value)
    print(f"\n{title}\n")
    print(f"| {name} key | iso key | median diff (pp) | largest abs diff (pp) |")
    print("|---|---|---:|---:|")
    for label, values in found.items():
        largest = max(values, key=abs)
        print(f"| {label} | {keys[label]} | {np.median(values):+.3f} | {largest:+.3f} |")


def main() -> None:
    tars = {f"tar_at_far_{t:g}": f"tar_at_far_{t:g}" for t in (1e-4, 1e-3, 1e-2, 1e-1)}
    table(
        "insightface vs iso, 6,000 LFW-style pairs",
        "insightface",
        lambda seed: verification(seed, 6000, 0.5, 2),
        {"auc": "auc"} | {k: v for k, v in tars.items() if k != "tar_at_far_0.0001"},
    )
    table(
        "insightface vs iso, 200,000 IJB-style pairs (1 % genuine)",
        "insightface",
        lambda seed: verification(seed, 200_000, 0.01, 4),
        {"auc": "auc"} | tars,
    )
    points = {f"{m}_{x:g}": f"{m}_{x:g}" for m in ("bpcer_at_apcer", "apcer_at_bpcer") for x in (0.01, 0.1, 0.2)}
    table("madation vs iso, 3,000 MAD scores", "madation", lambda seed: attack(seed, "mad"), {"eer": "eer"} | points)
    pad = {"eer": "eer", "hter": "hter", "auc": "auc"}
    frames = lambda seed: replace(attack(seed, "pad"), videos=None)  # noqa: E731
    videos = lambda seed: attack(seed, "pad")  # noqa: E731
    table("foundpad vs iso, 12,000 PAD frames, no video column (hter: iso's at its EER)", "foundpad", frames, pad)
    table("foundpad vs iso, those frames as 1,200 videos (foundpad: video means)", "foundpad", videos, pad)
    accuracy_gap()


def accuracy_gap() -> None:
    """insightface's 0.01-grid k-fold accuracy against overspec's exact-threshold ``kfold_accuracy``."""
    from overspec.metrics.verification import kfold_accuracy

    gaps = []
    for seed in SEEDS:
        data = verification(seed, 6000, 0.5, 2)
        theirs = CONVENTIONS.get("insightface").metrics(data)["accuracy"]
        gaps.append(100 * (theirs - kfold_accuracy(data.scores, data.positive).mean))
    print("\ninsightface accuracy vs overspec.metrics.kfold_accuracy (exact thresholds), 6,000 pairs\n")
    print(f"median {np.median(gaps):+.3f} pp, largest {max(gaps, key=abs):+.3f} pp")


if __name__ == "__main__":
    main()
