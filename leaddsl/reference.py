"""Reference evaluator: takes a compiled Plan, one contact, its events and an optional as-of
time and returns the contact's total, per-model scores, labels and flags as plain data; it walks
the Plan directly, written for clarity rather than speed, so tests can catch mistakes of the
fast evaluator (ruleset.py) by comparing the two.

It shares only record validation (leaddsl.records) with the fast evaluator. Each step below
follows one paragraph of the language's semantics, in the order a person would apply them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import plan as P
from .errors import RecordError
from .records import check_contact, check_event, parse_time

__all__ = ["reference_score"]


@dataclass(frozen=True)
class _Event:
    at: float  # epoch seconds
    key: str  # the event's id, or "events[i]" for an event without id (for tie-breaking)
    action: str
    object: str | None
    name: str | None


def reference_score(
    plan: P.Plan,
    contact: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]],
    as_of: object = None,
) -> dict[str, Any]:
    """Score one contact the slow, obvious way.

    Returns ``{"total", "scores": {model: points}, "labels": {name: label}, "qualified",
    "disqualified", "reasons": [...]}``. Raises RecordError for a bad record.
    """
    return _Evaluation(plan, contact, events, as_of).result()


class _Evaluation:
    """One contact being scored. Everything derived is computed on first use and remembered."""

    def __init__(
        self,
        plan: P.Plan,
        contact: Mapping[str, Any],
        events: Iterable[Mapping[str, Any]],
        as_of: object,
    ) -> None:
        self.plan = plan
        self.models = {m.name: m for m in plan.models}
        self.attrs = check_contact(contact, "contact", plan.numeric_attributes)
        delivered = self._read_events(events)
        # The as-of time: given, or else the latest event time given.
        if as_of is not None:
            self.as_of: float | None = parse_time(as_of, source="as_of", field="as_of")
        elif delivered:
            self.as_of = max(e.at for e in delivered)
        else:
            self.as_of = None
        # Events after the as-of time have not happened yet: they are ignored entirely.
        self.events = [e for e in delivered if self.as_of is None or e.at <= self.as_of]
        self._counted: dict[int, list[_Event]] = {}
        self._rule_points: dict[int, float] = {}
        self._labels: dict[str, tuple[str, int]] = {}  # name -> (label, rank)
        self._reasons: list[str] | None = None
        self._qualified: bool | None = None
        self._in_progress: set[str] = set()

    def _read_events(self, events: Iterable[Mapping[str, Any]]) -> list[_Event]:
        """Validated events; an id seen twice counts once (the first delivery wins)."""
        contact_id = self.attrs["id"]
        out: list[_Event] = []
        seen_ids: set[str] = set()
        for i, record in enumerate(events):
            source = f"events[{i}]"
            ev = check_event(record, source)
            if ev.contact is not None and ev.contact != contact_id:
                raise RecordError(
                    f"event of contact {ev.contact!r} given for contact {contact_id!r}",
                    source=source,
                    record_id=ev.id,
                    field="contact",
                )
            if ev.id is not None:
                if ev.id in seen_ids:
                    continue
                seen_ids.add(ev.id)
            out.append(
                _Event(ev.at, ev.id if ev.id is not None else source, ev.action, ev.object, ev.name)
            )
        return out

    # ---- time ----------------------------------------------------------------------------

    def age(self, event: _Event) -> float:
        assert self.as_of is not None  # there are events, so there is an as-of time
        return self.as_of - event.at

    # ---- event rules -----------------------------------------------------------------------

    @staticmethod
    def matches(action: str, object_: str | None, name: str | None, event: _Event) -> bool:
        """Exact match on action, and on object and name where the pattern has them."""
        return (
            event.action == action
            and (object_ is None or event.object == object_)
            and (name is None or event.name == name)
        )

    def is_additive(self, rule: P.EventRule) -> bool:
        return rule.additive or self.models[rule.model].additive

    def scores_event(self, rule: P.EventRule, event: _Event) -> bool:
        """Whether this rule gives points for this event, specificity applied within the model.

        Additive rules always apply. Among the model's matching non-additive rules, only those of
        the highest rank apply.
        """
        if not self.matches(rule.action, rule.object, rule.name, event):
            return False
        if self.is_additive(rule):
            return True
        ranks = [
            P.specificity(other.object, other.name)
            for other in self.plan.event_rules
            if other.model == rule.model
            and not self.is_additive(other)
            and self.matches(other.action, other.object, other.name, event)
        ]
        return P.specificity(rule.object, rule.name) == max(ranks)

    def counted(self, rule: P.EventRule) -> list[_Event]:
        """The events the rule counts: visible in its window and the model's expiry, then
        thinned by `once` (earliest; ties by event id) or `once per name` (earliest per name)."""
        if rule.index in self._counted:
            return self._counted[rule.index]
        model = self.models[rule.model]
        chosen = []
        for event in self.events:
            if not self.scores_event(rule, event):
                continue
            if rule.window is not None and self.age(event) > rule.window:
                continue
            if model.expire is not None and self.age(event) > model.expire:
                continue
            chosen.append(event)

        def earliest(evs: list[_Event]) -> _Event:
            return min(evs, key=lambda e: (e.at, e.key))

        if rule.once and chosen:
            chosen = [earliest(chosen)]
        elif rule.per_name and chosen:
            names: list[str | None] = []
            for event in chosen:
                if event.name not in names:
                    names.append(event.name)
            chosen = [earliest([e for e in chosen if e.name == n]) for n in names]
        self._counted[rule.index] = chosen
        return chosen

    def event_rule_points(self, rule: P.EventRule) -> float:
        """Each counted event gives points * 0.5 ** (age / half-life); the sum is then capped."""
        if rule.index not in self._rule_points:
            half_life = self.models[rule.model].half_life
            terms = []
            for event in self.counted(rule):
                if half_life is None:
                    terms.append(rule.points)
                else:
                    terms.append(rule.points * 0.5 ** (self.age(event) / half_life))
            self._rule_points[rule.index] = _cap(math.fsum(terms), rule.limit)
        return self._rule_points[rule.index]

    # ---- scores ----------------------------------------------------------------------------

    def rule_points(self) -> list[tuple[str, float]]:
        """(model, points) of every rule that gave points: event rules that counted an event,
        condition rules whose condition holds."""
        out = [
            (r.model, self.event_rule_points(r)) for r in self.plan.event_rules if self.counted(r)
        ]
        out += [(r.model, r.points) for r in self.plan.condition_rules if self.holds(r.condition)]
        return out

    def model_score(self, model: str) -> float:
        return math.fsum(p for m, p in self.rule_points() if m == model)

    def total(self) -> float:
        return math.fsum(p for _, p in self.rule_points())

    def gained(self, model: str | None, window: float) -> float:
        """Undecayed points of the model's event rules from counted events no older than window,
        each rule's sum capped by its limit."""
        parts = []
        for rule in self.plan.event_rules:
            if model is not None and rule.model != model:
                continue
            recent = [e for e in self.counted(rule) if self.age(e) <= window]
            parts.append(_cap(len(recent) * rule.points, rule.limit))
        return math.fsum(parts)

    # ---- qualification and labels -------------------------------------------------------------

    def reasons(self) -> list[str]:
        if self._reasons is None:
            self._reasons = [d.reason for d in self.plan.disqualify if self.holds(d.condition)]
        return self._reasons

    def qualified(self) -> bool:
        if self._qualified is None:
            self._qualified = not self.reasons() and any(
                self.holds(q.condition) for q in self.plan.qualify
            )
        return self._qualified

    def label(self, name: str) -> tuple[str, int]:
        """(label, rank) of a ladder, or (joined text, 0) of a combined label."""
        if name in self._labels:
            return self._labels[name]
        assert name not in self._in_progress, f"cycle through {name}"  # the checks forbid it
        self._in_progress.add(name)
        step = next(
            s for s in self.plan.steps if isinstance(s, (P.Ladder, P.Combined)) and s.name == name
        )
        if isinstance(step, P.Ladder):
            found = None
            for rank, rung in enumerate(step.rungs, 1):
                if rung.condition is None or self.holds(rung.condition):
                    found = (rung.label, rank)
                    break
            assert found is not None, f"ladder {name} has no otherwise rung"
        else:
            text = ""
            for kind, value in step.parts:
                if kind == "label":
                    text += self.label(value)[0]
                elif kind == "rank":
                    text += str(self.label(value)[1])
                else:
                    text += value
            found = (text, 0)
        self._in_progress.discard(name)
        self._labels[name] = found
        return found

    # ---- conditions ------------------------------------------------------------------------

    def value(self, subject: P.Subject) -> object:
        if isinstance(subject, P.Attr):
            return self.attrs.get(subject.name)
        if isinstance(subject, P.ModelScore):
            return self.model_score(subject.name)
        if isinstance(subject, P.TotalScore):
            return self.total()
        return self.label(subject.name)[0]

    def holds(self, cond: P.Cond) -> bool:
        if isinstance(cond, P.Cmp):
            return _compare(self.value(cond.subject), cond.op, cond.value, cond.exact)
        if isinstance(cond, P.In):
            have = self.value(cond.subject)
            if _is_missing(have):
                return False  # also for `not in`
            found = any(_compare(have, "=", v, cond.exact) for v in cond.values)
            return not found if cond.negated else found
        if isinstance(cond, P.Text):
            have = self.value(cond.subject)
            if _is_missing(have) or isinstance(have, bool):
                return False
            text, want = _fold(_as_text(have), cond.exact), _fold(cond.value, cond.exact)
            if cond.kind == "contains":
                return want in text
            if cond.kind == "starts":
                return text.startswith(want)
            return text.endswith(want)
        if isinstance(cond, P.Present):
            return _is_missing(self.value(cond.subject)) != cond.present
        if isinstance(cond, P.EventCount):
            n = sum(
                1
                for e in self.events
                if self.matches(cond.action, cond.object, cond.name, e)
                and (cond.window is None or self.age(e) <= cond.window)
            )
            return n >= cond.at_least
        if isinstance(cond, P.Gained):
            return _compare(self.gained(cond.model, cond.window), cond.op, cond.value, False)
        if isinstance(cond, P.Inactive):
            return not any(self.age(e) <= cond.window for e in self.events)
        if isinstance(cond, P.IsQualified):
            return self.qualified()
        if isinstance(cond, P.IsDisqualified):
            return bool(self.reasons())
        if isinstance(cond, P.AllOf):
            return all(self.holds(c) for c in cond.items)
        if isinstance(cond, P.AnyOf):
            return any(self.holds(c) for c in cond.items)
        if isinstance(cond, P.Negate):
            return not self.holds(cond.item)
        raise NotImplementedError(f"the reference evaluator has no account tests: {cond!r}")

    # ---- result ----------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        return {
            "total": self.total(),
            "scores": {m.name: self.model_score(m.name) for m in self.plan.models},
            "labels": {name: self.label(name)[0] for name in self.plan.label_names},
            "qualified": self.qualified(),
            "disqualified": bool(self.reasons()),
            "reasons": list(self.reasons()),
        }


# ---- values ---------------------------------------------------------------------------------


def _cap(points: float, limit: float | None) -> float:
    """`limit N` clamps the magnitude to N, keeping the sign."""
    if limit is None or abs(points) <= limit:
        return points
    return limit if points > 0 else -limit


def _is_missing(value: object) -> bool:
    """Absent, null or blank text."""
    return value is None or (isinstance(value, str) and value.strip() == "")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_text(value: object) -> str:
    """A value compared with text: a whole number reads as "250", not "250.0"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _fold(text: str, exact: bool) -> str:
    return text if exact else text.casefold()


def _compare(have: object, op: str, want: str | float | bool, exact: bool) -> bool:
    """`have OP want`; false whenever `have` is missing or of another kind than `want`."""
    if _is_missing(have):
        return False
    a: Any
    b: Any
    if isinstance(want, bool):
        if not isinstance(have, bool):
            return False
        a, b = have, want
    elif _is_number(want):
        if not _is_number(have):
            return False
        a, b = have, want
    else:
        if isinstance(have, bool):
            return False
        a, b = _fold(_as_text(have), exact), _fold(str(want), exact)
    if op == "=":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    if op == ">=":
        return bool(a >= b)
    raise ValueError(f"unknown comparison {op!r}")
