"""The exception tree: every error leaddsl raises on purpose is a LeadDSLError.

LeadDSLError
├── ScriptError     .diagnostics; str() prints each one in caret form
│   ├── ParseError  syntax, translated from Lark
│   └── CheckError  semantic checks
├── RecordError     .source (file:line), .record_id, .field
└── GraphError      e.g. a cycle in the account hierarchy
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .diagnostics import Diagnostic

__all__ = ["LeadDSLError", "ScriptError", "ParseError", "CheckError", "RecordError", "GraphError"]

# str() of a ScriptError lists this many diagnostics, then "... and N more".
_SHOWN = 20


class LeadDSLError(Exception):
    """Base of every error leaddsl raises for a user's script, data or request."""


class ScriptError(LeadDSLError):
    """A rule script has errors; ``.diagnostics`` holds every problem found, warnings too."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__(self._render())

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    def _render(self) -> str:
        # Errors with the warnings among them (a warning often explains the error next to it);
        # notes only when nothing else is there.
        shown = [d for d in self.diagnostics if d.severity != "note"] or list(self.diagnostics)
        text = "\n".join(d.render() for d in shown[:_SHOWN])
        if len(shown) > _SHOWN:
            text += f"\n... and {len(shown) - _SHOWN} more"
        return text


class ParseError(ScriptError):
    """The script is not valid syntax."""


class CheckError(ScriptError):
    """The script parses but is not meaningful (unknown names, type clashes, ...)."""


class RecordError(LeadDSLError):
    """A contact, account or event record breaks the record format.

    ``source`` says where the record came from (``events.ndjson:17`` or ``events[3]``),
    ``record_id`` names it when it has an id, ``field`` is the offending field.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        record_id: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.record_id = record_id
        self.field = field
        where = source or "record"
        if record_id is not None:
            where += f" (id {record_id!r})"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class GraphError(LeadDSLError):
    """The contact/account graph is inconsistent, e.g. a cycle of parent accounts."""
