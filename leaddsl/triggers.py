"""Triggers: what changed for a contact or an account, as small immutable records.

A Transition is emitted when a result's qualification, disqualification or a label differs from
the last one the engine recorded for that contact or account. The engine records a result each
time it evaluates one for triggers (after an ingest that touches it, or on ``advance``), so a
transition fires once, when it happens, in either direction, and again on a later crossing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import attrs

from .errors import LeadDSLError

__all__ = ["Transition", "Snapshot", "KINDS", "snapshot", "changes", "Subscriptions"]

KINDS = ("qualified", "disqualified", "label_changed")


@attrs.frozen
class Transition:
    """One change: ``subject`` ("contact" or "account") ``id`` went ``before`` -> ``after``.

    ``kind`` is "qualified" or "disqualified" (``before``/``after`` are booleans: a lost
    qualification is ``True -> False``) or "label_changed" (``name`` is the ladder, the values
    are labels). ``cause`` is the id of the event that caused it, or None when time passing
    (``Engine.advance``) did.
    """

    kind: str
    subject: str
    id: str
    name: str
    before: Any
    after: Any
    as_of: datetime | None
    cause: str | None

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["as_of"] = None if self.as_of is None else self.as_of.isoformat()
        return data


# What triggers compare: (qualified, disqualified, labels as sorted pairs).
Snapshot = tuple[bool, bool, tuple[tuple[str, str], ...]]


def snapshot(result: Any) -> Snapshot:
    return (bool(result.qualified), bool(result.disqualified), tuple(sorted(result.labels.items())))


def changes(
    subject: str,
    ident: str,
    before: Snapshot,
    after: Snapshot,
    as_of: datetime | None,
    cause: str | None,
) -> Iterator[Transition]:
    """The transitions between two snapshots of one contact or account."""
    if before[1] != after[1]:
        yield Transition("disqualified", subject, ident, "disqualified", before[1], after[1],
                         as_of, cause)
    if before[0] != after[0]:
        yield Transition("qualified", subject, ident, "qualified", before[0], after[0], as_of,
                         cause)
    old, new = dict(before[2]), dict(after[2])
    for name in new:
        if old.get(name) != new[name]:
            yield Transition("label_changed", subject, ident, name, old.get(name), new[name],
                             as_of, cause)


Callback = Callable[[Transition], object]


class Subscriptions:
    """The host's callbacks, by kind, with optional filters on label and subject."""

    def __init__(self) -> None:
        self._subs: list[tuple[str, Callback, str | None, str | None]] = []

    def add(self, kind: str, fn: Callback, label: str | None, subject: str | None,
            labels: Mapping[str, object]) -> None:
        if kind not in KINDS:
            raise LeadDSLError(f"unknown trigger {kind!r}; use one of: {', '.join(KINDS)}")
        if not callable(fn):
            raise LeadDSLError(f"a trigger needs a function, got {type(fn).__name__}")
        if label is not None and kind != "label_changed":
            raise LeadDSLError("label= applies to 'label_changed' triggers")
        if label is not None and label not in labels:
            known = ", ".join(labels) or "none"
            raise LeadDSLError(f"no ladder {label!r} in the script (its ladders: {known})")
        if subject not in (None, "contact", "account"):
            raise LeadDSLError(f"subject must be 'contact' or 'account', not {subject!r}")
        self._subs.append((kind, fn, label, subject))

    def remove(self, fn: Callback) -> None:
        self._subs = [s for s in self._subs if s[1] != fn]  # bound methods compare equal

    def __bool__(self) -> bool:
        return bool(self._subs)

    def fire(self, transitions: list[Transition]) -> None:
        """Call every matching callback, in registration order, for each transition in order."""
        for t in transitions:
            for kind, fn, label, subject in self._subs:
                if kind == t.kind and (label is None or label == t.name) and (
                    subject is None or subject == t.subject
                ):
                    fn(t)
