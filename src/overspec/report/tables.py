"""A small table type with Markdown, LaTeX, CSV and HTML renderings (LaTeX escaping by pylatexenc)."""

from __future__ import annotations

import csv
import functools
import html
import io
import math
import re
from dataclasses import dataclass, field


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            "| " + " | ".join(self.columns) + " |",
            "|" + "|".join("---" for _ in self.columns) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines + [""] + [f"_{n}_" for n in self.notes]) + "\n"

    def latex(self, label: str | None = None) -> str:
        """A ``table`` float (booktabs) with ``\\caption`` and ``\\label`` (``tab:`` + ``label``, or the title's
        words), its notes below; every cell escaped by ``latex_escape``. Needs ``\\usepackage{booktabs}``."""
        spec = "l" + "r" * (len(self.columns) - 1)
        body = [" & ".join(latex_escape(c) for c in row) + r" \\" for row in self.rows]
        notes = [r"\par\smallskip\footnotesize " + " ".join(latex_escape(n) for n in self.notes)] if self.notes else []
        return (
            "\n".join(
                [
                    r"\begin{table}[t]",
                    r"\centering",
                    rf"\caption{{{latex_escape(self.title)}}}",
                    rf"\label{{tab:{latex_label(label or self.title)}}}",
                    rf"\begin{{tabular}}{{{spec}}}",
                    r"\toprule",
                    " & ".join(latex_escape(c) for c in self.columns) + r" \\",
                    r"\midrule",
                    *body,
                    r"\bottomrule",
                    r"\end{tabular}",
                    *notes,
                    r"\end{table}",
                ]
            )
            + "\n"
        )

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return buffer.getvalue()

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in self.rows)
        notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in self.notes)
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        return f"<h3>{html.escape(self.title)}</h3>{table}{notes}"


# Characters the report writes that pylatexenc would spell as text-mode symbols (or not know): arrows and
# relations as math, so that plain pdflatex sets them in any font; the chance flag as a dagger.
MATH = {"↑": r"$\uparrow$", "↓": r"$\downarrow$", "≥": r"$\geq$", "≤": r"$\leq$", "±": r"$\pm$", "⚠": r"$^\dagger$"}


@functools.cache
def _encoder():
    from pylatexenc.latexencode import RULE_DICT, UnicodeToLatexConversionRule, UnicodeToLatexEncoder

    own = UnicodeToLatexConversionRule(RULE_DICT, {ord(k): v for k, v in MATH.items()})
    # a character LaTeX has no name for becomes "<U+XXXX>" in typewriter type, rather than stopping pdflatex
    return UnicodeToLatexEncoder(
        conversion_rules=[own, "defaults"], unknown_char_policy="unihex", unknown_char_warning=False
    )


def latex_escape(text: str) -> str:
    """``text`` as LaTeX source that pdflatex sets as written: ``# $ % & ~ _ ^ \\ { }`` and non-ASCII characters
    by pylatexenc's table, arrows and relations as math (``MATH``)."""
    return _encoder().unicode_to_latex(str(text))


def latex_label(text: str) -> str:
    """A ``\\label`` key from ``text``: lower-case letters, digits and hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "table"


def format_value(value: float | None, reason: str | None = None, *, percent: bool = True) -> str:
    """A metric for a table: a percentage (or the plain fraction), or, for a value the data cannot resolve,
    ``n/a (needs ≥ N …)`` with its reason; never a number for an unmeasured point."""
    if value is None:
        return f"n/a ({reason.replace('>= ', '≥ ')})" if reason else "n/a"
    if not math.isfinite(value):
        return ""
    return f"{100 * value:.2f}" if percent else f"{value:.6g}"
