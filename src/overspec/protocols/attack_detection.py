"""Morphing / presentation attack detection on any encoder, with the scorer the model supports:
its native head, a classifier trained on frozen features of the protocol's training split, or zero-shot
prompts. Reported per attack type, on average and for the worst type (as MADation and FoundPAD do)."""

from __future__ import annotations

import numpy as np

from overspec.data.attack_protocol import AttackDataset, AttackSplit
from overspec.errors import DataError, ModelError
from overspec.features import extract_features
from overspec.metrics import attack_detection_report
from overspec.metrics.conventions import convention_for, convention_metrics
from overspec.metrics.conventions.foundpad import video_means
from overspec.metrics.scores import equal_error_point, sweep
from overspec.metrics.specs import parse_metric
from overspec.models.encoder import Encoder
from overspec.protocols.result import ProtocolResult
from overspec.protocols.specs import ATTACK_HEADLINES
from overspec.registry import Registry

VIDEO_SCORES = ("mean", "frame")  # frames of a video: one mean score per video, or every frame a sample
# The study's own zero-shot prompts, one per class, scored as softmax(100 cos) of bona fide: MADation's
# ``test_clip`` (src/training/trainer.py: ["face image morphing attack", "bona-fide presentation"]) and its PAD
# counterpart for FoundPAD ("biometric presentation attack").
STUDY_PROMPTS = {
    "mad": ("bona-fide presentation", "face image morphing attack"),
    "pad": ("bona-fide presentation", "biometric presentation attack"),
}
PROMPT_SETS = ("ensemble", "study")
PROMPTS = {  # overspec's zero-shot prompt ensembles per class: (bona fide, attack)
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
def head_scores(encoder: Encoder, features: dict[str, np.ndarray], data: AttackDataset, **_) -> np.ndarray:
    """The model's own head: softmax probability of bona fide."""
    import torch

    if encoder.head is None or encoder.head.positive != "bonafide":
        raise ModelError(f"{encoder.name} has no bona fide / attack head; use scorer probe or prompt")
    with torch.inference_mode():
        return encoder.head.scores(torch.from_numpy(features["test"]).to(encoder.device)).float().cpu().numpy()


@SCORERS.register("probe")
def probe_scores(encoder: Encoder, features: dict[str, np.ndarray], data: AttackDataset, **_) -> np.ndarray:
    """Logistic regression on frozen features of the training split (l2 chosen on a validation carve-out):
    the logit of bona fide minus that of attack."""
    import torch

    from overspec.protocols.probe_recipes.lbfgs import fit_probe

    if "train" not in features:
        raise ModelError(f"scorer probe needs a train split in {data.name}")
    labels = data.split("train").bonafide.astype(np.int64)
    model, _, _ = fit_probe(features["train"], labels, 2)
    with torch.no_grad():
        logits = model.logits(torch.from_numpy(features["test"]))
    return (logits[:, 1] - logits[:, 0]).numpy()


@SCORERS.register("prompt")
def prompt_scores(
    encoder: Encoder, features: dict[str, np.ndarray], data: AttackDataset, *, prompts: str = "ensemble", **_
) -> np.ndarray:
    """Zero-shot. ``ensemble``: cosine to the bona fide prompt ensemble minus cosine to the attack ensemble;
    ``study``: the study's single prompts, the softmax over 100 x cosine of bona fide (float32, as MADation)."""
    from overspec.protocols.zeroshot import text_classifier

    if prompts == "study":
        return _study_prompt_scores(encoder, features["test"], data.task)
    bonafide, attack = PROMPTS[data.task]
    # each class is one prompt ensemble: classes x templates, the template being the prompt itself
    weights_b = text_classifier(encoder, ["bonafide"], bonafide)
    weights_a = text_classifier(encoder, ["attack"], attack)
    test = encoder.to_text_space(features["test"])
    e = test / np.linalg.norm(test, axis=1, keepdims=True)
    return (e @ weights_b - e @ weights_a).ravel()


def _study_prompt_scores(encoder: Encoder, test: np.ndarray, task: str) -> np.ndarray:
    import torch

    from overspec.protocols.zeroshot import text_classifier

    bonafide, attack = STUDY_PROMPTS[task]
    # one prompt per class, used as is (the template is "{c}"): columns attack, bona fide as in the reference
    text = torch.from_numpy(text_classifier(encoder, [attack, bonafide], ["{c}"]).astype(np.float32))
    image = torch.from_numpy(encoder.to_text_space(test).astype(np.float32))
    image = image / image.norm(dim=-1, keepdim=True)
    return (100.0 * image @ text).softmax(dim=-1)[:, 1].numpy()


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


def video_level(scores: np.ndarray, split: AttackSplit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scores, bonafide, attack types)`` with the frames of each video replaced by one sample holding their
    mean score (FoundPAD ``utils/utils.py`` ``compute_video_score``); still images stay samples of their own."""
    if split.videos is None:
        return scores, split.bonafide, split.attack_types
    keys = np.array([v if v else f"\0{i}" for i, v in enumerate(split.videos)], dtype=object)  # "": its own
    rows, means = video_means(keys, np.asarray(scores, dtype=np.float64), split.bonafide)
    return means, split.bonafide[rows], split.attack_types[rows]


def run_attack_detection(
    encoder: Encoder,
    data: AttackDataset,
    *,
    scorer: str = "auto",
    fallback: str = "probe",
    video_scores: str = "mean",
    prompts: str = "ensemble",
    convention: str = "iso",
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> ProtocolResult:
    """MAD/PAD metrics of ``encoder`` on ``data``'s test split, scored by ``scorer`` (``auto``: the model's head,
    else ``fallback``); ``prompts`` picks the prompt scorer's prompts; ``video_scores`` whether a video's frames
    count once (their mean) or each; ``convention`` the metric rules (``iso``; ``madation`` / ``foundpad``: the
    study's codebases', ``metrics/conventions/``). The decision threshold for HTER/ACER is the
    development split's EER threshold when the protocol has one (else the test EER threshold)."""
    if video_scores not in VIDEO_SCORES:
        raise DataError(f"video_scores {video_scores!r}: use one of {', '.join(VIDEO_SCORES)}")
    if prompts not in PROMPT_SETS:
        raise DataError(f"prompts {prompts!r}: use one of {', '.join(PROMPT_SETS)}")
    convention_for(convention, data.task)  # an unknown convention fails before any image is read
    if scorer == "auto":  # the model's own head; else ``fallback`` (a probe needs a train split)
        has_head = encoder.head is not None and encoder.head.positive == "bonafide"
        scorer = "head" if has_head else ("probe" if fallback == "probe" and "train" in data.splits else "prompt")
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

    def scored(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        values = score(encoder, {**features, "test": features[split]}, data, prompts=prompts)
        if video_scores == "frame":
            return values, data.split(split).bonafide, data.split(split).attack_types
        return video_level(values, data.split(split))

    scores, bonafide, types = scored("test")
    threshold = None
    if "dev" in data.splits:
        dev_scores, dev_bonafide, _ = scored("dev")
        threshold = equal_error_point(sweep(dev_scores, dev_bonafide))[1]
    if convention == "iso":
        overall = attack_detection_report(scores, bonafide, types, threshold=threshold)
        metrics = flat(overall) | {"n_bonafide": overall.n_bonafide, "n_attack": overall.n_attack}
        per_type = per_attack_reports(scores, bonafide, types, overall.threshold)
        summarised = SUMMARY_METRICS
        source = "dev EER" if threshold is not None else "test EER"
        decision = {"threshold": overall.threshold, "threshold_from": source}
    else:  # the reference's own rules on the whole test set and on each attack type against all bona fide
        metrics = convention_metrics(convention, data.task, scores, bonafide)
        metrics |= {"n_bonafide": int(bonafide.sum()), "n_attack": int((~bonafide).sum())}
        per_type = {
            attack: convention_metrics(convention, data.task, scores[keep], bonafide[keep])
            for attack in sorted(set(types[~bonafide]))
            for keep in [bonafide | (types == attack)]
        }
        summarised = tuple(next(iter(per_type.values())))
        decision = {"threshold_from": f"{convention}: each set's own ROC"}
    for attack, values in per_type.items():
        metrics |= {f"{k}@{attack}": v for k, v in values.items()}
    for key in summarised:
        column = [values[key] for values in per_type.values()]
        worst = min(column) if parse_metric(key).higher_is_better else max(column)
        metrics |= {f"mean_{key}": float(np.mean(column)), f"worst_{key}": float(worst)}
    headline = ATTACK_HEADLINES[data.task]
    details = {
        "scorer": scorer,
        **({"prompts": prompts} if scorer == "prompt" else {}),
        "convention": convention,
        **decision,
        "attack_types": list(per_type),
        "scored_per": "video" if video_scores == "mean" and data.split("test").videos is not None else "image",
    }
    samples = {"score": np.asarray(scores, dtype=np.float64), "bonafide": np.asarray(bonafide, dtype=bool)}
    return ProtocolResult("attack_detection", data.name, encoder.name, metrics, headline, details, samples)
