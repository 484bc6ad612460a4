"""Morphing / presentation attack detection on any encoder, with the scorer the model supports:
its native head, a classifier trained on frozen features of the protocol's training split, or zero-shot
prompts. Reported per attack type, on average and for the worst type (as MADation and FoundPAD do)."""

from __future__ import annotations

import numpy as np

from overspec.data.attack_protocol import AttackDataset
from overspec.errors import ModelError
from overspec.features import extract_features
from overspec.metrics import attack_detection_report
from overspec.metrics.scores import equal_error_point, sweep
from overspec.models.encoder import Encoder
from overspec.protocols.result import ProtocolResult
from overspec.protocols.specs import ATTACK_HEADLINES
from overspec.registry import Registry

PROMPTS = {  # zero-shot prompt ensembles per class: (bona fide, attack)
    "mad": (
        ["a bona fide face image", "a photo of a real face", "a genuine passport photo of a person"],
        [
            "a face image morphing attack",
            "a morphed face blended from two people",
            "a digitally manipulated face image",
        ],
    ),
    "pad": (
        ["a bona fide presentation", "a photo of a real live face", "a live person in front of the camera"],
        [
            "a presentation attack",
            "a photo of a printed face",
            "a face shown on a screen",
            "a person wearing a face mask",
        ],
    ),
}
SUMMARY_METRICS = (
    "eer",
    "auc",
    "bpcer_at_apcer_0.01",
    "bpcer_at_apcer_0.1",
    "bpcer_at_apcer_0.2",
    "apcer_at_bpcer_0.01",
    "apcer_at_bpcer_0.1",
    "apcer_at_bpcer_0.2",
)

SCORERS: Registry = Registry("attack scorer")


@SCORERS.register("head")
def head_scores(encoder: Encoder, features: dict[str, np.ndarray], data: AttackDataset) -> np.ndarray:
    """The model's own head: softmax probability of bona fide."""
    import torch

    if encoder.head is None or encoder.head.positive != "bonafide":
        raise ModelError(f"{encoder.name} has no bona fide / attack head; use scorer probe or prompt")
    with torch.inference_mode():
        return encoder.head.scores(torch.from_numpy(features["test"]).to(encoder.device)).float().cpu().numpy()


@SCORERS.register("probe")
def probe_scores(encoder: Encoder, features: dict[str, np.ndarray], data: AttackDataset) -> np.ndarray:
    """Logistic regression on frozen features of the training split (l2 chosen on a validation carve-out):
    the logit of bona fide minus that of attack."""
    import torch

    from overspec.protocols.probe_recipes.lbfgs import fit_probe

    if "train" not in features:
        raise ModelError(f"scorer probe needs a train split in {data.name}")
    labels = data.split("train").bonafide.astype(np.int64)
    model, _, _ = fit_probe(features["train"], labels, 2, final_tolerance=1e-4)
    with torch.no_grad():
        logits = model.logits(torch.from_numpy(features["test"]))
    return (logits[:, 1] - logits[:, 0]).numpy()


@SCORERS.register("prompt")
def prompt_scores(encoder: Encoder, features: dict[str, np.ndarray], data: AttackDataset) -> np.ndarray:
    """Zero-shot: cosine to the bona fide prompt ensemble minus cosine to the attack ensemble."""
    from overspec.protocols.zeroshot import text_classifier

    bonafide, attack = PROMPTS[data.task]
    # each class is one prompt ensemble: classes x templates, the template being the prompt itself
    weights_b = text_classifier(encoder, ["bonafide"], bonafide)
    weights_a = text_classifier(encoder, ["attack"], attack)
    test = encoder.to_text_space(features["test"])
    e = test / np.linalg.norm(test, axis=1, keepdims=True)
    return (e @ weights_b - e @ weights_a).ravel()


def per_attack_reports(scores, bonafide, types, threshold):
    """Each attack type against all bona fide samples, then the mean and the worst over types."""
    reports = {}
    for attack in sorted(set(types[~bonafide])):
        keep = bonafide | (types == attack)
        reports[attack] = flat(attack_detection_report(scores[keep], bonafide[keep], types[keep], threshold=threshold))
    return reports


def flat(report) -> dict[str, float]:
    values = {k: getattr(report, k) for k in ("eer", "auc", "apcer", "apcer_max", "bpcer", "acer", "hter")}
    values |= {f"bpcer_at_apcer_{k}": v for k, v in report.bpcer_at_apcer.items()}
    values |= {f"apcer_at_bpcer_{k}": v for k, v in report.apcer_at_bpcer.items()}
    return values


def run_attack_detection(
    encoder: Encoder,
    data: AttackDataset,
    *,
    scorer: str = "auto",
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: bool = True,
) -> ProtocolResult:
    """MAD/PAD metrics of ``encoder`` on ``data``'s test split. The decision threshold for HTER/ACER is the
    development split's EER threshold when the protocol has one (else the test EER threshold)."""
    if scorer == "auto":
        has_head = encoder.head is not None and encoder.head.positive == "bonafide"
        scorer = "head" if has_head else ("probe" if "train" in data.splits else "prompt")
    score = SCORERS.get(scorer)
    needed = ["test"] + (["train"] if scorer == "probe" else []) + (["dev"] if "dev" in data.splits else [])
    features = {
        split: extract_features(
            encoder,
            data.split(split).images,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
            description=f"{encoder.name} on {data.name}/{split}",
        )
        for split in needed
    }
    test = data.split("test")
    scores = score(encoder, features, data)
    threshold = None
    if "dev" in data.splits:
        dev_scores = score(encoder, {**features, "test": features["dev"]}, data)
        threshold = equal_error_point(sweep(dev_scores, data.split("dev").bonafide))[1]
    overall = attack_detection_report(scores, test.bonafide, test.attack_types, threshold=threshold)
    metrics = flat(overall) | {"n_bonafide": overall.n_bonafide, "n_attack": overall.n_attack}
    per_type = per_attack_reports(scores, test.bonafide, test.attack_types, overall.threshold)
    for attack, values in per_type.items():
        metrics |= {f"{k}@{attack}": v for k, v in values.items()}
    for key in SUMMARY_METRICS:
        column = [values[key] for values in per_type.values()]
        worst = max(column) if key != "auc" else min(column)
        metrics |= {f"mean_{key}": float(np.mean(column)), f"worst_{key}": float(worst)}
    headline = ATTACK_HEADLINES[data.task]
    details = {
        "scorer": scorer,
        "threshold": overall.threshold,
        "threshold_from": "dev EER" if threshold is not None else "test EER",
        "attack_types": list(per_type),
    }
    samples = {"score": np.asarray(scores, dtype=np.float64), "bonafide": np.asarray(test.bonafide, dtype=bool)}
    return ProtocolResult("attack_detection", data.name, encoder.name, metrics, headline, details, samples)
