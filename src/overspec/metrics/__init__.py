"""Pure numpy metrics with their definitions and sources in the docstrings."""

from overspec.metrics.classification import accuracy_topk, mean_per_class_recall
from overspec.metrics.iso30107 import AttackDetectionReport, apcer_at_bpcer, attack_detection_report, bpcer_at_apcer
from overspec.metrics.scores import ThresholdSweep, check_scores, sweep
from overspec.metrics.verification import eer, kfold_accuracy, roc, roc_auc, tar_at_far

__all__ = [
    "AttackDetectionReport",
    "ThresholdSweep",
    "accuracy_topk",
    "apcer_at_bpcer",
    "attack_detection_report",
    "bpcer_at_apcer",
    "check_scores",
    "eer",
    "kfold_accuracy",
    "mean_per_class_recall",
    "roc",
    "roc_auc",
    "sweep",
    "tar_at_far",
]
