"""Live scoring: a small, mergeable summary of each contact's events.

A ContactState is what the evaluator needs from a contact's history, not the history itself:

- per event rule, by what the rule needs: a count and a decayed running sum (kept against a
  reference time, rescaled when a later event arrives); the first event (``once``); the first
  event of each name (``once per name``); or, for a rule with a window or an expiring model,
  the events still inside that window;
- per event test in a condition, a count and, when a window asks for them, the recent times;
- the latest event time (inactivity), and for velocity tests (``gained within``) the events of
  the last window.

Adding an event touches only the rules that match it. Two states of one contact built from
disjoint event sets merge into the state of all of them: sums add, firsts take the minimum,
windows join and drop what fell out. So the order in which events arrive does not matter.

The state answers for any as-of time at or after its latest event; for an earlier time the
engine replays the contact's events instead (the state has forgotten what left its windows).
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

from . import plan as P
from .columns import Event, Key
from .records import to_datetime
from .results import ContactResult
from .ruleset import EvalState, Ruleset

__all__ = ["ContactState", "LiveRules"]

Hit = tuple[float, str, str | None]  # (time, event id, event name)
_at = itemgetter(0)
_key = itemgetter(2)  # (action, object, name): see leaddsl.columns.Event


def _hits(events: Sequence[Event], positions: list[int]) -> list[Hit]:
    """The Hits of the events at these positions."""
    return [(e[0], e[1], e[2][2]) for e in map(events.__getitem__, positions)]


# How a rule keeps its events (fixed per rule when the LiveRules is built).
SUM, WINDOW, ONCE, PER_NAME = "sum", "window", "once", "per_name"


class ContactState:
    """One contact's summary; see the module docstring. Mutable; owned by one engine."""

    __slots__ = ("top", "rules", "counts", "times", "recent")

    def __init__(self, n_rules: int, n_counters: int, velocity: bool) -> None:
        self.top: float | None = None  # the latest event time seen
        self.rules: list[Any] = [None] * n_rules  # per rule, None until an event matches it
        self.counts: list[int] = [0] * n_counters
        self.times: list[list[float]] = [[] for _ in range(n_counters)]
        self.recent: list[list[Hit]] | None = [[] for _ in range(n_rules)] if velocity else None

    def to_data(self) -> list[Any]:
        """Plain lists and numbers (for JSON), the inverse of ``ContactState.from_data``."""
        rules: list[Any] = []
        for acc in self.rules:
            if isinstance(acc, dict):
                rules.append({"n": [[k, *v] for k, v in acc.items()]})
            elif isinstance(acc, tuple):
                rules.append({"e": list(acc)})
            else:  # a copy: sums are updated in place
                rules.append(list(acc) if isinstance(acc, list) else acc)
        recent = None if self.recent is None else [list(r) for r in self.recent]
        return [self.top, rules, list(self.counts), [list(t) for t in self.times], recent]

    @classmethod
    def from_data(cls, data: list[Any]) -> ContactState:
        top, rules, counts, times, recent = data
        st = cls(0, 0, False)
        st.top = top
        st.rules = []
        for acc in rules:
            if isinstance(acc, dict) and "n" in acc:
                st.rules.append({row[0]: tuple(row[1:]) for row in acc["n"]})
            elif isinstance(acc, dict):
                st.rules.append(tuple(acc["e"]))
            elif isinstance(acc, list) and acc and isinstance(acc[0], list):
                st.rules.append([tuple(e) for e in acc])
            else:  # a copy: sums are updated in place
                st.rules.append(list(acc) if isinstance(acc, list) else acc)
        st.counts = list(counts)
        st.times = [list(t) for t in times]
        st.recent = None if recent is None else [[tuple(e) for e in r] for r in recent]
        return st


class LiveRules:
    """The live form of a Ruleset: add events to states, merge states, score a state."""

    def __init__(self, rules: Ruleset) -> None:
        self.rules = rules
        plan = rules.plan
        self._kind: list[str] = []
        for rule, horizon in zip(plan.event_rules, rules._horizon, strict=True):
            if horizon != math.inf:
                self._kind.append(WINDOW)
            elif rule.once:
                self._kind.append(ONCE)
            elif rule.per_name:
                self._kind.append(PER_NAME)
            else:
                self._kind.append(SUM)
        self._points = tuple(r.points for r in plan.event_rules)
        self._half_life = rules._half_life
        self._horizon = rules._horizon
        conds = list(rules._compiled)
        self._velocity = max(
            (c.window for c in conds if isinstance(c, P.Gained)), default=None
        )
        # The longest window any event test asks of each counter (None: counts only).
        keys = rules._counter_keys
        self._counter_window: list[float | None] = [None] * len(keys)
        for c in conds:
            if isinstance(c, P.EventCount) and c.window is not None:
                slot = keys.index((c.action, c.object, c.name))
                old = self._counter_window[slot]
                self._counter_window[slot] = c.window if old is None else max(old, c.window)
        # What _prune looks at, fixed here: it runs after every event.
        self._windows = tuple(
            (i, self._horizon[i]) for i, kind in enumerate(self._kind) if kind == WINDOW
        )
        self._counter_windows = tuple(
            (c, w) for c, w in enumerate(self._counter_window) if w is not None
        )

    def new(self) -> ContactState:
        return ContactState(
            len(self._kind), len(self.rules._counter_keys), self._velocity is not None
        )

    # ---- adding and merging ------------------------------------------------------------------

    def add(self, st: ContactState, t: float, eid: str, key: Key) -> None:
        """Count one event (already deduplicated by the caller); ``key`` is its (action,
        object, name)."""
        hit = self.rules._memo.get(key)
        if hit is None:
            hit = self.rules._targets(key)
        rule_ids, counter_ids = hit
        top = st.top
        if top is None or t > top:
            st.top = top = t
        event = (t, eid, key[2])
        for i in rule_ids:
            st.rules[i] = self._join(i, st.rules[i], event, top)
            if st.recent is not None:
                st.recent[i].append(event)
        for c in counter_ids:
            st.counts[c] += 1
            if self._counter_window[c] is not None:
                st.times[c].append(t)
        self._prune(st)

    def build(self, events: Sequence[Event]) -> ContactState:
        """The state of these events (already deduplicated), made at once: what adding them
        one by one, in this order, makes."""
        st = self.new()
        if not events:
            return st
        rules = self.rules
        memo, targets = rules._memo, rules._targets
        # Event positions grouped by the rules and counters they hit, in C passes: a handful
        # of groups per contact, each in log order.
        keys = list(map(_key, events))
        hit_of: list[Any] = list(map(memo.get, keys))
        if None in hit_of:
            hit_of = [targets(k) if h is None else h for h, k in zip(hit_of, keys, strict=True)]
        ids = list(map(id, hit_of))
        groups: defaultdict[int, list[int]] = defaultdict(list)
        deque(map(list.append, map(groups.__getitem__, ids), range(len(events))), 0)
        by_id = dict(zip(ids, hit_of, strict=True))
        rule_parts: list[list[list[int]]] = [[] for _ in self._kind]
        counter_parts: list[list[list[int]]] = [[] for _ in self._counter_window]
        for hid, positions in groups.items():
            rule_ids, counter_ids = by_id[hid]
            for i in rule_ids:
                rule_parts[i].append(positions)
            for c in counter_ids:
                counter_parts[c].append(positions)
        ts = list(map(_at, events))
        st.top = max(ts)
        at = ts.__getitem__

        def in_order(parts: list[list[int]]) -> list[int]:
            return parts[0] if len(parts) == 1 else sorted(chain.from_iterable(parts))

        for i, parts in enumerate(rule_parts):
            if not parts:
                continue
            pos = in_order(parts)
            kind = self._kind[i]
            if kind == SUM:
                hl = self._half_life[i]
                if hl is None:
                    st.rules[i] = [len(pos)]
                else:  # add()'s running sum, in the log's order: the same floats to the bit
                    pts = self._points[i]
                    mine_t = list(map(at, pos))
                    total, ref = pts, mine_t[0]
                    for t in mine_t[1:]:
                        if t > ref:
                            total, ref = total * 0.5 ** ((t - ref) / hl) + pts, t
                        else:
                            total = total + pts * 0.5 ** ((ref - t) / hl)
                    st.rules[i] = [len(pos), total, ref]
                if st.recent is not None:
                    st.recent[i] = sorted(_hits(events, pos))
                continue
            mine = _hits(events, pos)
            if kind == ONCE:
                st.rules[i] = min(mine)
            elif kind == PER_NAME:
                first: dict[str | None, Hit] = {}
                for e in mine:
                    if e[2] not in first or e < first[e[2]]:
                        first[e[2]] = e
                st.rules[i] = first
            else:
                st.rules[i] = sorted(mine)
            if st.recent is not None:
                st.recent[i] = sorted(mine)
        for c, parts in enumerate(counter_parts):
            st.counts[c] = sum(map(len, parts))
            if self._counter_window[c] is not None:
                st.times[c] = sorted(map(at, chain.from_iterable(parts)))
        self._prune(st)
        return st

    def _join(self, i: int, acc: Any, e: Hit, top: float) -> Any:
        kind = self._kind[i]
        if kind == SUM:  # the state owns its lists (merge and from_data copy): update in place
            hl = self._half_life[i]
            if hl is None:
                if acc is None:
                    return [1]
                acc[0] += 1
                return acc
            pts = self._points[i]
            if acc is None:
                return [1, pts, e[0]]
            n, total, ref = acc
            if e[0] > ref:  # keep terms at most 1: rescale the sum to the later reference
                acc[0], acc[1], acc[2] = n + 1, total * 0.5 ** ((e[0] - ref) / hl) + pts, e[0]
            else:
                acc[0], acc[1] = n + 1, total + pts * 0.5 ** ((ref - e[0]) / hl)
            return acc
        if kind == ONCE:
            return e if acc is None or e < acc else acc
        if kind == PER_NAME:
            acc = {} if acc is None else acc
            first = acc.get(e[2])
            if first is None or e < first:
                acc[e[2]] = e
            return acc
        acc = [] if acc is None else acc
        acc.append(e)
        return acc

    def _prune(self, st: ContactState) -> None:
        """Drop what no as-of time at or after the latest event can count any more."""
        top = st.top
        if top is None:
            return
        for i, horizon in self._windows:
            acc = st.rules[i]
            if acc and top - acc[0][0] > horizon:
                st.rules[i] = [e for e in acc if top - e[0] <= horizon]
        for c, w in self._counter_windows:
            times = st.times[c]
            if times and top - times[0] > w:
                st.times[c] = [x for x in times if top - x <= w]
        if st.recent is not None and self._velocity is not None:
            v = self._velocity
            for i, hits in enumerate(st.recent):
                if hits and top - hits[0][0] > v:
                    st.recent[i] = [e for e in hits if top - e[0] <= v]

    def merge(self, a: ContactState, b: ContactState) -> ContactState:
        """The state of both event sets (disjoint: the same event in both counts twice)."""
        out = self.new()
        tops = [x for x in (a.top, b.top) if x is not None]
        out.top = max(tops) if tops else None
        for i, kind in enumerate(self._kind):
            x, y = a.rules[i], b.rules[i]
            if x is None or y is None:
                out.rules[i] = _copy(y if x is None else x)
            elif kind == SUM:
                out.rules[i] = self._merge_sums(i, x, y)
            elif kind == ONCE:
                out.rules[i] = min(x, y)
            elif kind == PER_NAME:
                joined = dict(x)
                for name, e in y.items():
                    if name not in joined or e < joined[name]:
                        joined[name] = e
                out.rules[i] = joined
            else:
                out.rules[i] = sorted(x + y)
        out.counts = [p + q for p, q in zip(a.counts, b.counts, strict=True)]
        out.times = [sorted(p + q) for p, q in zip(a.times, b.times, strict=True)]
        if out.recent is not None and a.recent is not None and b.recent is not None:
            out.recent = [sorted(p + q) for p, q in zip(a.recent, b.recent, strict=True)]
        self._prune(out)
        return out

    def _merge_sums(self, i: int, x: list[Any], y: list[Any]) -> list[Any]:
        hl = self._half_life[i]
        if hl is None:
            return [x[0] + y[0]]
        (n1, s1, r1), (n2, s2, r2) = x, y
        ref = max(r1, r2)
        return [n1 + n2, s1 * 0.5 ** ((ref - r1) / hl) + s2 * 0.5 ** ((ref - r2) / hl), ref]

    # ---- scoring -----------------------------------------------------------------------------

    def result(
        self,
        attrs_: Mapping[str, Any],
        st: ContactState,
        as_of: float | None,
        adjustments: list[tuple[float, str, str, float, str]] | None = None,
        replay: Callable[[], ContactResult] | None = None,
    ) -> ContactResult:
        """Score a state at ``as_of`` (at or after its latest event; default that event).

        ``replay`` recomputes the result from the contact's events: its explain() uses it.
        """
        rules = self.rules
        if as_of is None:
            as_of = st.top
        if as_of is not None and st.top is not None and as_of < st.top:
            raise ValueError("a live state answers only at or after its latest event")
        when = 0.0 if as_of is None else as_of
        ev = EvalState(rules, attrs_, as_of)
        ev.last_time = st.top
        ev.counts = st.counts
        ev.counters = st.times
        ev.adjustments = [a for a in adjustments or () if a[0] <= when]
        per_model: dict[str, list[float]] = {m: [] for m in rules._models}
        every: list[float] = []
        selected: list[list[Hit]] = []
        for i, rule in enumerate(rules._rules):
            acc = st.rules[i]
            picked: list[Hit] = []
            counted = 0  # events the rule counts at this time
            if acc is None:
                decayed = raw = 0.0
            else:
                kind = self._kind[i]
                if kind == SUM:
                    counted = acc[0]
                    raw = rule.points * counted
                    hl = self._half_life[i]
                    decayed = raw if hl is None else acc[1] * 0.5 ** ((when - acc[2]) / hl)
                elif kind == ONCE:
                    picked = [acc]
                    decayed, raw = self._decay(i, picked, when), rule.points
                elif kind == PER_NAME:
                    picked = sorted(acc.values())
                    decayed, raw = self._decay(i, picked, when), rule.points * len(picked)
                else:
                    picked, decayed, raw = rules._rule_outcome(i, acc, when)
                counted = counted or len(picked)
            if self._velocity is not None and st.recent is not None and self._kind[i] == SUM:
                selected.append(st.recent[i])
            else:
                selected.append(picked)
            if not counted:
                ev.rule_points.append((0.0, 0.0, 0.0, False))
                continue
            final, capped = decayed, False
            if rule.limit is not None and abs(decayed) > rule.limit:
                final, capped = math.copysign(rule.limit, decayed), True
            ev.rule_points.append((final, decayed, raw, capped))
            per_model[rule.model].append(final)
            every.append(final)
        ev.selected = selected  # what velocity tests read (recent events of each rule)
        finish = rules.finisher()
        if finish is not None:
            finish(ev, per_model, every)
        else:
            rules._tally_conditions(ev, per_model, every)
            ev.scores = {m: math.fsum(v) for m, v in per_model.items()}
            ev.total = math.fsum(every)
            rules._classify(ev)
        return ContactResult(
            id=str(attrs_["id"]),
            total=ev.total,
            scores=dict(ev.scores),
            labels=dict(ev.labels),
            qualified=ev.qualified,
            disqualified=bool(ev.reasons),
            reasons=ev.reasons,
            as_of=to_datetime(as_of),
            state=ev,
            replay=replay,
        )

    def _decay(self, i: int, picked: list[Hit], as_of: float) -> float:
        pts, hl = self._points[i], self._half_life[i]
        if hl is None:
            return math.fsum([pts] * len(picked))
        return math.fsum([pts * 0.5 ** ((as_of - e[0]) / hl) for e in picked])


def _copy(acc: Any) -> Any:
    if isinstance(acc, list):
        return list(acc)
    if isinstance(acc, dict):
        return dict(acc)
    return acc
