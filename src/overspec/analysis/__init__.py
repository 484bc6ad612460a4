"""GELO, per-dataset changes, confidence intervals, significance and biometric gains."""

from overspec.analysis.gelo import GeloResult, Record, analyse, assign_bases, biometric_gains, read_table

__all__ = ["GeloResult", "Record", "analyse", "assign_bases", "biometric_gains", "read_table"]
