"""Morphing / presentation attack detection on any encoder, with the scorer the model supports:
its native head, a classifier trained on frozen features of the protocol's training split, or zero-shot
prompts. Reported per attack type, on average and for the worst type (as MADation and FoundPAD do)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from overspec.data.attack_protocol import AttackDataset, AttackSplit
from overspec.errors import DataError, ModelError
from overspec.features import extract_features
from overspec.metrics.conventions import ScoreSet, convention_for
from overspec.metrics.conventions.foundpad import video_means
from overspec.metrics.scores import equal_error_point, sweep
from overspec.models.encoder import Encoder
from overspec.protocols.result import ProtocolResult, scored_result
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
SCORERS: Registry = Registry("attack scorer")


@SCORERS.register("head")
def head_scores(encoder: Encoder, features: dict[str, np.ndarray], data: AttackDataset, **_) -> np.ndarray:
    """The model's own head: softmax probability of bona fide."""
    import torch

    head = encoder.head_for(data.task)
    if head is None or head.positive != "bonafide":
        raise ModelError(f"{encoder.name} has no bona fide / attack head; use scorer probe or prompt")
    with torch.inference_mode():
        return head.scores(torch.from_numpy(features["test"]).to(encoder.device)).float().cpu().numpy()


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
    ``study``: the study's single prompts, the softmax over 100 x cosine of bona fide (float32, as MADation). A
    sigmoid model (SigLIP) scores with its own rule: each prompt's sigmoid(exp(logit_scale) cos + logit_bias),
    bona fide minus attack (``ensemble``) or of bona fide alone (``study``)."""
    from overspec.protocols.zeroshot import text_classifier

    if prompts == "study":
        return _study_prompt_scores(encoder, features["test"], data.task)
    bonafide, attack = PROMPTS[data.task]
    # each class is one prompt ensemble: classes x templates, the template being the prompt itself
    weights_b = text_classifier(encoder, ["bonafide"], bonafide)
    weights_a = text_classifier(encoder, ["attack"], attack)
    test = encoder.to_text_space(features["test"])
    e = test / np.linalg.norm(test, axis=1, keepdims=True)
    rule = encoder.prompt_rule
    if rule.kind == "sigmoid":  # SigLIP: each ensemble's own probability of matching, bona fide minus attack
        cosine = np.concatenate([e @ weights_b, e @ weights_a], axis=1)
        probabilities = rule.probabilities(cosine)
        return probabilities[:, 0] - probabilities[:, 1]
    return (e @ weights_b - e @ weights_a).ravel()


def _study_prompt_scores(encoder: Encoder, test: np.ndarray, task: str) -> np.ndarray:
    import torch

    from overspec.protocols.zeroshot import text_classifier

    bonafide, attack = STUDY_PROMPTS[task]
    # one prompt per class, used as is (the template is "{c}"): columns attack, bona fide as in the reference
    text = torch.from_numpy(text_classifier(encoder, [attack, bonafide], ["{c}"]).astype(np.float32))
    image = torch.from_numpy(encoder.to_text_space(test).astype(np.float32))
    image = image / image.norm(dim=-1, keepdim=True)
    rule = encoder.prompt_rule
    if rule.kind == "sigmoid":  # SigLIP: the sigmoid probability that the bona fide prompt matches
        return rule.probabilities((image @ text).numpy())[:, 1]
    return (100.0 * image @ text).softmax(dim=-1)[:, 1].numpy()


def video_level(scores: np.ndarray, split: AttackSplit, task: str) -> ScoreSet:
    """The score set with the frames of each video replaced by one sample holding their mean score (FoundPAD
    ``utils/utils.py`` ``compute_video_score``) and the video's id; still images stay samples of their own."""
    if split.videos is None:
        return ScoreSet.of(task, scores, split.bonafide, split.attack_types)
    keys = video_keys(split.videos)
    rows, means = video_means(keys, np.asarray(scores, dtype=np.float64), split.bonafide)
    return ScoreSet.of(task, means, split.bonafide[rows], split.attack_types[rows], keys[rows])


def video_keys(videos: np.ndarray) -> np.ndarray:
    """Each row's video, a still image (video "") being a video of its own, named by its row."""
    return np.array([v if v else f"image {i}" for i, v in enumerate(videos)], dtype=object)


def check_attack_detection(
    encoder: Encoder,
    data: AttackDataset,
    *,
    scorer: str = "auto",
    fallback: str = "probe",
    video_scores: str = "mean",
    prompts: str = "ensemble",
    convention: str = "iso",
    **_,
) -> str:
    """Every check that needs no image: the options, and that the scorer can run on this model and data (a head,
    a train split for the probe, a text tower for prompts). Returns the scorer (``auto``: the model's head, else
    ``fallback``, a probe needing a train split)."""
    if video_scores not in VIDEO_SCORES:
        raise DataError(f"video_scores {video_scores!r}: use one of {', '.join(VIDEO_SCORES)}")
    if prompts not in PROMPT_SETS:
        raise DataError(f"prompts {prompts!r}: use one of {', '.join(PROMPT_SETS)}")
    convention_for(convention, data.task)
    head = encoder.head_for(data.task)
    has_head = head is not None and head.positive == "bonafide"
    if scorer == "auto":
        scorer = "head" if has_head else ("probe" if fallback == "probe" and "train" in data.splits else "prompt")
    SCORERS.get(scorer)
    if scorer == "head" and not has_head:
        raise ModelError(f"{encoder.name} has no bona fide / attack head; use scorer probe or prompt")
    if scorer == "probe" and "train" not in data.splits:
        raise ModelError(f"scorer probe needs a train split in {data.name}; it has {', '.join(sorted(data.splits))}")
    if scorer == "prompt":
        from overspec.protocols.zeroshot import check_text_tower

        check_text_tower(encoder)
    return scorer


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
    scorer = check_attack_detection(
        encoder,
        data,
        scorer=scorer,
        fallback=fallback,
        video_scores=video_scores,
        prompts=prompts,
        convention=convention,
    )
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

    def scored(split: str) -> ScoreSet:
        part = data.split(split)
        values = score(encoder, {**features, "test": features[split]}, data, prompts=prompts)
        if video_scores == "frame":  # every frame a sample (its video still known: the bootstrap resamples videos)
            videos = None if part.videos is None else video_keys(part.videos)
            return ScoreSet.of(data.task, values, part.bonafide, part.attack_types, videos)
        return video_level(values, part, data.task)

    test = scored("test")
    rules = convention_for(convention, data.task)
    decision: dict = {"threshold_from": f"{convention}: each set's own ROC"}
    if rules.name == "iso":  # HTER and ACER at the development set's EER threshold, where there is one
        decision = {"threshold_from": "test EER"}
        if "dev" in data.splits:
            dev = scored("dev")
            test = replace(test, threshold=equal_error_point(sweep(dev.scores, dev.positive))[1])
            decision = {"threshold_from": "dev EER"}
    if video_scores == "frame" and rules.prepare is not None:
        test = replace(test, videos=None)  # frames scored as they are: the convention must not pool them again
    details = {
        "scorer": scorer,
        **({"prompts": prompts} if scorer == "prompt" else {}),
        **decision,
        "attack_types": list(test.attack_names),
        "scored_per": "video" if video_scores == "mean" and data.split("test").videos is not None else "image",
    }
    samples = {"score": test.scores.copy(), "bonafide": test.positive.copy()}
    return scored_result(
        "attack_detection",
        data.name,
        encoder.name,
        test,
        convention,
        ATTACK_HEADLINES[data.task],
        details=details,
        samples=samples,
    )
