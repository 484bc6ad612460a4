"""One MAD/PAD sample, and the one vocabulary of bona fide / attack labels (protocol CSVs, score files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from overspec.errors import DataError

BONAFIDE_LABELS = ("bonafide", "bona fide", "bona_fide", "real", "live")
ATTACK_LABELS = ("attack", "spoof", "morph")


@dataclass(frozen=True)
class AttackSample:
    path: Path
    bonafide: bool
    attack_type: str  # "" for bona fide
    split: str
    video: str = ""  # the video the sample is a frame of ("" for a still image: its own group)
    frame: int | None = None  # the frame to decode when ``path`` is a video file


def is_bonafide(label: str, *, where: str) -> bool:
    """True for a bona fide label, False for an attack label (case and surrounding space ignored)."""
    text = label.strip().lower()
    if text in BONAFIDE_LABELS:
        return True
    if text in ATTACK_LABELS:
        return False
    raise DataError(
        f"{where}: label {label!r} is not bona fide ({', '.join(BONAFIDE_LABELS)}) "
        f"or attack ({', '.join(ATTACK_LABELS)})"
    )
