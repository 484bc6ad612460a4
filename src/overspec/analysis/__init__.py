"""GELO, per-dataset changes, confidence intervals, significance and biometric gains."""

from overspec.analysis.gelo import GeloResult, Record, analyse, biometric_gains, read_table

__all__ = ["GeloResult", "Record", "analyse", "biometric_gains", "read_table"]
