"""The report: tables (Markdown, LaTeX, CSV), plots (PNG, SVG) and one self-contained HTML page."""

from overspec.report.build import build_report

__all__ = ["build_report"]
