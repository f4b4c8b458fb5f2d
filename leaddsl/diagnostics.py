"""Diagnostics: one problem in a script, where it is, and what to do; rendered in caret form.

rules.lead:3:14: error: unknown score model 'engagment'
  3 | qualify when engagment >= 40
    |              ^^^^^^^^^ did you mean 'engagement'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import attrs

from .ast import Span

__all__ = ["Diagnostic", "Source", "suggest"]


@attrs.frozen
class Source:
    """A script's text and the name it is reported under."""

    text: str
    filename: str = "<script>"

    def line_text(self, line: int) -> str:
        # Lines as the parser counts them: only "\n" ends one (not \f, \v or \u2028).
        lines = self.text.split("\n")
        return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""

    def span_text(self, span: Span) -> str:
        return self.text[span.start : span.end]


@attrs.frozen
class Diagnostic:
    """One problem. ``line`` and ``column`` are 1-based; ``hint`` is the suggested fix, if any."""

    code: str
    severity: str  # "error" | "warning" | "note"
    message: str
    span: Span
    filename: str = "<script>"
    line_text: str = ""
    hint: str | None = None

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def render(self) -> str:
        """``file:line:col: severity: message``, the source line, and a caret run under the span."""
        head = f"{self.filename}:{self.line}:{self.column}: {self.severity}: {self.message}"
        if not self.line_text and not self.hint:
            return head
        gutter = str(self.line)
        pad = " " * len(gutter)
        # Tabs stay tabs in the caret line so the carets line up in any terminal.
        prefix = "".join("\t" if ch == "\t" else " " for ch in self.line_text[: self.column - 1])
        if self.span.end_line == self.line:
            width = max(1, self.span.end_column - self.column)
        else:
            width = max(1, len(self.line_text) - self.column + 1)
        caret = prefix + "^" * width
        if self.hint:
            caret += " " + self.hint
        return f"{head}\n  {gutter} | {self.line_text}\n  {pad} | {caret}"

    def __str__(self) -> str:
        return self.render()


def suggest(word: str, names: Iterable[str]) -> str | None:
    """The nearest of ``names`` to a misspelt ``word``, or None when nothing is close enough."""
    found = difflib.get_close_matches(word, sorted(set(names)), n=1, cutoff=0.7)
    return found[0] if found else None


def make(
    source: Source,
    code: str,
    severity: str,
    message: str,
    span: Span,
    hint: str | None = None,
) -> Diagnostic:
    """Build a diagnostic for ``span`` of ``source``, copying the line it starts on."""
    return Diagnostic(
        code, severity, message, span, source.filename, source.line_text(span.line), hint
    )
