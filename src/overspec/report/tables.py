"""A small table type with Markdown, LaTeX, CSV and HTML renderings (no heavy dependency needed)."""

from __future__ import annotations

import csv
import html
import io
import math
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

    def latex(self) -> str:
        def escape(text: str) -> str:
            for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
                text = text.replace(a, b)
            return text

        spec = "l" + "r" * (len(self.columns) - 1)
        body = [" & ".join(escape(c) for c in row) + r" \\" for row in self.rows]
        return (
            "\n".join(
                [
                    r"\begin{table}[t]",
                    r"\centering",
                    rf"\caption{{{escape(self.title)}}}",
                    rf"\begin{{tabular}}{{{spec}}}",
                    r"\toprule",
                    " & ".join(escape(c) for c in self.columns) + r" \\",
                    r"\midrule",
                    *body,
                    r"\bottomrule",
                    r"\end{tabular}",
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


def format_value(value: float | None, reason: str | None = None, *, percent: bool = True) -> str:
    """A metric for a table: a percentage (or the plain fraction), or, for a value the data cannot resolve,
    ``n/a (needs ≥ N …)`` with its reason; never a number for an unmeasured point."""
    if value is None:
        return f"n/a ({reason.replace('>= ', '≥ ')})" if reason else "n/a"
    if not math.isfinite(value):
        return ""
    return f"{100 * value:.2f}" if percent else f"{value:.6g}"
