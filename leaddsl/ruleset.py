"""Ruleset: a Plan built into closures that score one contact from its attributes and events.

An event meets only the rules that can match it: rules are indexed by (action, object, name),
with specificity settled once per distinct key. Every rule keeps its text and span, so
``explain()`` costs nothing extra. A Ruleset is immutable and safe to share between threads.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from . import plan as P
from .ast import NO_SPAN
from .codegen import Generated, generate
from .columns import Event
from .errors import RecordError
from .records import check_contact, check_event, parse_time, to_datetime
from .results import Check, ContactResult, Contribution, QualifyCheck

if TYPE_CHECKING:
    from .accounts import AccountRules

__all__ = ["Ruleset", "EvalState"]

_fsum = math.fsum
_NOTHING = (0.0, 0.0, 0.0, False)  # the points of a rule no event matched
_MEMO_LIMIT = 200_000  # distinct event keys remembered; past that, resolve without memo


class EvalState:
    """Everything known about one contact while it is scored; kept by its result for explain()."""

    __slots__ = (
        "ruleset",
        "attrs",
        "as_of",
        "selected",
        "counters",
        "counts",
        "adjustments",
        "last_time",
        "scores",
        "rule_points",
        "condition_hits",
        "total",
        "labels",
        "ranks",
        "qualified",
        "reasons",
        "detail",
    )

    def __init__(self, ruleset: Ruleset, attrs_: Mapping[str, Any], as_of: float | None) -> None:
        self.ruleset = ruleset
        self.attrs = attrs_
        self.as_of = as_of
        self.selected: list[list[tuple[float, str, str | None]]] = []
        self.counters: list[list[float]] = []
        self.counts: list[int] | None = None  # live states: events per counter, all time
        # Manual adjustments: (time, id, model, points, reason), counted as they are.
        self.adjustments: list[tuple[float, str, str, float, str]] = []
        self.last_time: float | None = None
        self.scores: dict[str, float] = {}
        self.rule_points: list[tuple[float, float, float, bool]] = []  # final, decayed, raw, capped
        self.condition_hits: list[bool] = []
        self.total = 0.0
        self.labels: dict[str, str] = {}
        self.ranks: dict[str, int] = {}
        self.qualified = False
        self.reasons: tuple[str, ...] = ()
        # A summary state (from the generated scorer) lacks the per-rule events and hits:
        # this rebuilds the full state, for explain() and for velocity tests.
        self.detail: Callable[[], EvalState] | None = None


Pred = Callable[[EvalState], bool]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _fold(value: str, exact: bool) -> str:
    return value if exact else value.casefold()


def _compare(op: str) -> Callable[[Any, Any], bool]:
    return {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }[op]


class Ruleset:
    """A compiled script. Build with ``leaddsl.compile``; score with :meth:`score`."""

    def __init__(
        self,
        plan: P.Plan,
        diagnostics: tuple[Any, ...] = (),
        extra: tuple[P.Cond, ...] = (),
        account_extra: tuple[P.Cond, ...] = (),
        *,
        generated: bool = True,
    ) -> None:
        """``extra`` (and ``account_extra``): conditions outside the plan, such as filters,
        compiled now so that the events they test are counted when contacts are scored.
        ``generated=False`` scores with the closures alone (the generated scorer's reference)."""
        self.plan = plan
        self.generated = generated
        self._generated: Generated | None = None
        self._generate_lock = threading.Lock()
        self.diagnostics = diagnostics
        self._rules = plan.event_rules
        self._models = tuple(m.name for m in plan.models)
        self._model_of = {m.name: m for m in plan.models}
        self._slot = {r.index: i for i, r in enumerate(plan.event_rules)}
        # Per rule, fixed at build time: how far back events count, and the model's half-life.
        self._horizon = tuple(
            min(w for w in (r.window, self._model_of[r.model].expire, math.inf) if w is not None)
            for r in plan.event_rules
        )
        self._half_life = tuple(self._model_of[r.model].half_life for r in plan.event_rules)
        self._by_action: dict[str, list[P.EventRule]] = {}
        for rule in plan.event_rules:
            self._by_action.setdefault(rule.action, []).append(rule)
        # Event tests in conditions (`visited pricing within 30 days`) count matching events.
        self._counter_keys: list[tuple[str, str | None, str | None]] = []
        self._counter_of: dict[P.EventCount, int] = {}
        self._compiled: dict[P.Cond, Pred] = {}
        self._condition_preds = tuple(self._pred(r.condition) for r in plan.condition_rules)
        for cond in extra:
            self._pred(cond)
        self._disqualify = tuple((d.reason, self._pred(d.condition)) for d in plan.disqualify)
        self._qualify = tuple(self._pred(q.condition) for q in plan.qualify)
        self._steps: list[tuple[str, Any]] = []
        for step in plan.steps:
            if isinstance(step, P.Ladder):
                rungs = tuple(
                    (r.label, None if r.condition is None else self._pred(r.condition))
                    for r in step.rungs
                )
                self._steps.append(("ladder", (step.name, rungs)))
            elif isinstance(step, P.Combined):
                self._steps.append(("combined", step))
            else:
                self._steps.append((step, None))
        self._memo: dict[
            tuple[str, str | None, str | None], tuple[tuple[int, ...], tuple[int, ...]]
        ] = {}
        # One object per distinct hit: keys that differ only in a name the rules ignore share
        # it, so the live summary groups a contact's events by hit with ``id`` (see
        # LiveRules.build) into a few groups rather than one per name.
        self._hits: dict[tuple[tuple[int, ...], tuple[int, ...]],
                         tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._memo_lock = threading.Lock()
        # The account block is built last: its where clauses are contact conditions, compiled
        # here so that the event tests among them have counters before any contact is scored.
        self.accounts: AccountRules | None = None
        if plan.account is not None:
            from .accounts import AccountRules

            self.accounts = AccountRules(plan.account, self, account_extra)

    # ---- public ----------------------------------------------------------------------

    @property
    def models(self) -> tuple[str, ...]:
        return self._models

    @property
    def ladders(self) -> tuple[str, ...]:
        return self.plan.label_names

    @property
    def source(self) -> str:
        return self.plan.source

    def score(
        self,
        contact: Mapping[str, Any],
        events: Iterable[Mapping[str, Any]] = (),
        as_of: object = None,
        *,
        source: str = "events",
    ) -> ContactResult:
        """Score one contact from its attributes and its events.

        Args:
            contact: a mapping with at least ``id``; the other keys are attributes.
            events: mappings with ``action``, ``at`` and optionally ``id``, ``object``,
                ``name``, ``channel``, ``contact`` (which must then be this contact's id).
            as_of: when to evaluate (ISO text, datetime or epoch seconds). Default: the time of
                the latest event given, so the result is reproducible. Later events are ignored.
            source: how bad events are named in errors (``events[3]``).

        Returns:
            A frozen ContactResult.

        Raises:
            RecordError: a record breaks the record format (the error names it and the field).

        Example:
            >>> rules = compile("when opened email: +1")
            >>> rules.score({"id": "c1"}, [{"action": "opened", "object": "email",
            ...                              "at": "2026-01-01T00:00:00Z"}]).total
            1.0
        """
        attrs_ = check_contact(contact, "contact", self.plan.numeric_attributes)
        cid = attrs_["id"]
        parsed = []
        seen: set[str] = set()
        for i, rec in enumerate(events):
            ev = check_event(rec, f"{source}[{i}]")
            if ev.contact is not None and ev.contact != cid:
                raise RecordError(
                    f"event of contact {ev.contact!r} given for contact {cid!r}",
                    source=f"{source}[{i}]",
                    record_id=ev.id,
                    field="contact",
                )
            eid = ev.id
            if eid is None:
                eid = f"{source}[{i}]"  # a name for explain(); never deduplicated
            elif eid in seen:
                continue  # the same event delivered twice counts once
            else:
                seen.add(eid)
            parsed.append((ev.at, eid, (ev.action, ev.object, ev.name)))
        when = None if as_of is None else parse_time(as_of, source="as_of", field="as_of")
        return self.score_parsed(attrs_, parsed, when)

    def score_parsed(
        self,
        attrs_: Mapping[str, Any],
        events: list[Event],
        as_of: float | None,
        adjustments: list[tuple[float, str, str, float, str]] | None = None,
    ) -> ContactResult:
        """Score a contact whose record and events are already validated and deduplicated.

        ``events`` are ``(epoch, id, (action, object, name))`` (see ``leaddsl.columns.Event``);
        ``score`` and ``score_all`` call this.
        ``adjustments`` are manual ones, ``(epoch, id, model, points, reason)``.
        """
        fast = self._scorer()
        if fast is not None:
            st = fast(attrs_, events, as_of, adjustments)
            # Later events may join the list: the detail replays the ones scored here.
            # (st.adjustments: the ones counted, copied; the caller's list may grow.)
            st.detail = partial(
                self._state, attrs_, events, len(events), st.as_of, st.adjustments
            )
        else:
            st = self._state(attrs_, events, len(events), as_of, adjustments)
        # The state is finished: the result shares its dicts rather than copying them.
        return ContactResult(
            id=str(attrs_["id"]),
            total=st.total,
            scores=st.scores,
            labels=st.labels,
            qualified=st.qualified,
            disqualified=bool(st.reasons),
            reasons=st.reasons,
            as_of=to_datetime(st.as_of),
            state=st,
        )

    def _scorer(self) -> Callable[..., EvalState] | None:
        """The generated scorer, written on first use (and again when a filter compiled since
        added event tests); None where the closures score: when asked, for an account block,
        and for velocity tests, which need every rule's events (the summary lacks them)."""
        gen = self._generation()
        return None if gen is None else gen.fn

    def finisher(
        self,
    ) -> Callable[[EvalState, dict[str, list[float]], list[float]], EvalState] | None:
        """The generated second half of scoring, from the rules' points to totals, labels and
        flags (``_tally_conditions`` then ``_classify``); None where the closures score."""
        gen = self._generation()
        return None if gen is None else gen.finish

    def _generation(self) -> Generated | None:
        gen = self._generated
        if gen is not None and gen.counters == len(self._counter_keys):
            return gen
        if not self.generated or any(isinstance(c, P.Gained) for c in tuple(self._compiled)):
            return None
        with self._generate_lock:
            gen = self._generated
            if gen is None or gen.counters != len(self._counter_keys):
                gen = self._generated = generate(self)
        return gen

    def detailed(self, st: EvalState) -> EvalState:
        """The full state of a summary state (itself when already full)."""
        return st if st.detail is None else st.detail()

    def _state(
        self,
        attrs_: Mapping[str, Any],
        events: list[Event],
        n: int,
        as_of: float | None,
        adjustments: list[tuple[float, str, str, float, str]] | None,
    ) -> EvalState:
        """The closure evaluator: the full state of a contact from its first ``n`` events."""
        if n < len(events):
            events = events[:n]
        if as_of is None and events:
            as_of = max(e[0] for e in events)
        st = EvalState(self, attrs_, as_of)
        if adjustments:
            when = math.inf if as_of is None else as_of
            st.adjustments = [a for a in adjustments if a[0] <= when]
        selected: list[list[tuple[float, str, str | None]]] = [[] for _ in self._rules]
        counters: list[list[float]] = [[] for _ in self._counter_keys]
        st.selected, st.counters = selected, counters
        last = None
        targets = self._targets
        memo = self._memo
        for t, eid, key in events:
            if as_of is not None and t > as_of:
                continue  # not yet happened at the as-of time
            if last is None or t > last:
                last = t
            hit = memo.get(key)
            if hit is None:
                hit = targets(key)
            rule_ids, counter_ids = hit
            for r in rule_ids:
                selected[r].append((t, eid, key[2]))
            for c in counter_ids:
                counters[c].append(t)
        st.last_time = last
        self._finish(st)
        return st

    def to_sql(self, dialect: str = "duckdb", as_of: object = None, pretty: bool = True,
               part: str = "contacts", levels: int = 10) -> str:
        """The rules as one SQL query, for review or to run in a warehouse.

        ``part="contacts"``: the contact rules; the query reads the tables ``events`` (contact,
        id, at, action, object, name) and ``contacts`` (id and one column per attribute) and
        returns a row per contact. ``part="accounts"``: the account block, reading also
        ``accounts``, ``members`` and ``hierarchy``, a row per account (``levels``: how deep a
        hierarchy it scores when a subsidiary's disqualification matters). See
        docs/scaling.md. Needs ``pip install 'leaddsl[batch]'`` (sqlglot).
        """
        from .sql.warehouse import to_sql

        return to_sql(self, dialect, as_of, pretty, part, levels)

    # ---- event index ---------------------------------------------------------------------

    def _targets(
        self, key: tuple[str, str | None, str | None]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Rules scoring an event with this key (specificity applied per model), and counters."""
        action, obj, name = key
        matching = [r for r in self._by_action.get(action, ()) if r.matches(action, obj, name)]
        chosen: list[int] = []
        for model in self._models:
            mine = [r for r in matching if r.model == model]
            plain = [r for r in mine if not r.additive]
            top = max((r.specificity for r in plain), default=-1)
            chosen.extend(r.index for r in mine if r.additive or r.specificity == top)
        rule_ids = tuple(sorted(self._slot[i] for i in chosen))
        counters = tuple(
            i
            for i, (a, o, n) in enumerate(self._counter_keys)
            if a == action and (o is None or o == obj) and (n is None or n == name)
        )
        hit = (rule_ids, counters)
        if len(self._memo) < _MEMO_LIMIT:
            with self._memo_lock:
                hit = self._hits.setdefault(hit, hit)
                self._memo[key] = hit
        return hit

    # ---- per-contact reduction -------------------------------------------------------------

    def _rule_outcome(
        self, i: int, picked: list[tuple[float, str, str | None]], as_of: float
    ) -> tuple[list[tuple[float, str, str | None]], float, float]:
        """The events rule ``i`` counts, their decayed sum (before the cap), their raw sum."""
        rule = self._rules[i]
        horizon, hl = self._horizon[i], self._half_life[i]
        if horizon != math.inf:
            picked = [e for e in picked if as_of - e[0] <= horizon]
        if rule.once and picked:
            picked = [min(picked)]
        elif rule.per_name and picked:
            first: dict[str | None, tuple[float, str, str | None]] = {}
            for e in picked:
                if e[2] not in first or e < first[e[2]]:
                    first[e[2]] = e
            picked = sorted(first.values())
        pts = rule.points
        if hl is None:
            decayed = _fsum([pts] * len(picked))
        else:
            decayed = _fsum([pts * 0.5 ** ((as_of - e[0]) / hl) for e in picked])
        raw = pts * len(picked)
        return picked, decayed, raw

    def _finish(self, st: EvalState) -> None:
        as_of = st.as_of if st.as_of is not None else 0.0
        per_model: dict[str, list[float]] = {m: [] for m in self._models}
        every: list[float] = []
        st.rule_points = points = [_NOTHING] * len(self._rules)
        for i, rule in enumerate(self._rules):
            if not st.selected[i]:
                continue
            picked, decayed, raw = self._rule_outcome(i, st.selected[i], as_of)
            st.selected[i] = picked
            final = decayed
            capped = False
            if rule.limit is not None and abs(decayed) > rule.limit:
                final = math.copysign(rule.limit, decayed)
                capped = True
            points[i] = (final, decayed, raw, capped)
            if picked:
                per_model[rule.model].append(final)
                every.append(final)
        self._tally_conditions(st, per_model, every)
        st.scores = {m: _fsum(v) for m, v in per_model.items()}
        st.total = _fsum(every)
        self._classify(st)

    def _tally_conditions(
        self, st: EvalState, per_model: dict[str, list[float]], every: list[float]
    ) -> None:
        """Add the points of the condition rules that hold; remember which did for explain()."""
        for i, crule in enumerate(self.plan.condition_rules):
            hit = self._condition_preds[i](st)
            st.condition_hits.append(hit)
            if hit:
                per_model[crule.model].append(crule.points)
                every.append(crule.points)
        for _t, _id, model, points, _reason in st.adjustments:
            per_model[model].append(points)
            every.append(points)

    def _classify(self, st: EvalState) -> None:
        """Disqualification, qualification and labels, in the order their dependencies need."""
        for kind, data in self._steps:
            if kind == "disqualified":
                st.reasons = tuple(reason for reason, pred in self._disqualify if pred(st))
            elif kind == "qualified":
                st.qualified = not st.reasons and any(pred(st) for pred in self._qualify)
            elif kind == "ladder":
                name, rungs = data
                for rank, (label, pred) in enumerate(rungs, 1):
                    if pred is None or pred(st):
                        st.labels[name] = label
                        st.ranks[name] = rank
                        break
            else:
                st.labels[data.name] = "".join(
                    st.labels[v] if k == "label" else str(st.ranks[v]) if k == "rank" else v
                    for k, v in data.parts
                )

    # ---- explanation -----------------------------------------------------------------------

    def contributions(self, st: EvalState) -> tuple[Contribution, ...]:
        st = self.detailed(st)
        out: list[tuple[int, Contribution]] = []
        for i, rule in enumerate(self._rules):
            picked = st.selected[i]
            if not picked:
                continue
            final, decayed, raw, capped = st.rule_points[i]
            out.append(
                (
                    rule.index,
                    Contribution(
                        model=rule.model,
                        rule=rule.text,
                        line=rule.span.line,
                        span=rule.span,
                        points=final,
                        before_cap=decayed,
                        raw=raw,
                        capped=capped,
                        events=tuple(e[1] for e in picked),
                        kind="event",
                    ),
                )
            )
        for i, crule in enumerate(self.plan.condition_rules):
            if st.condition_hits[i]:
                out.append(
                    (
                        crule.index,
                        Contribution(
                            model=crule.model,
                            rule=crule.text,
                            line=crule.span.line,
                            span=crule.span,
                            points=crule.points,
                            before_cap=crule.points,
                            raw=crule.points,
                            capped=False,
                            events=(),
                            kind="condition",
                        ),
                    )
                )
        out.sort(key=lambda x: x[0])  # script order: rule indexes follow the source
        return tuple(c for _, c in out) + adjustment_rows(st)

    def qualify_checks(self, st: EvalState) -> tuple[QualifyCheck, ...]:
        st = self.detailed(st)
        checks = []
        for line, pred in zip(self.plan.qualify, self._qualify, strict=True):
            parts = [Check(text, self._pred(cond)(st)) for text, cond in line.parts]
            if st.reasons:
                parts.append(Check(f"not disqualified ({', '.join(st.reasons)})", False))
            holds = pred(st) and not st.reasons
            checks.append(QualifyCheck(line.line, line.text, holds, tuple(parts)))
        return tuple(checks)

    # ---- conditions to closures ---------------------------------------------------------------

    def _pred(self, cond: P.Cond) -> Pred:
        # Keyed by value: equal conditions share one closure (and one event counter).
        fn = self._compiled.get(cond)
        if fn is None:
            fn = self._build(cond)
            self._compiled[cond] = fn
        return fn

    def _value(self, subject: P.Subject) -> Callable[[EvalState], Any]:
        match subject:
            case P.Attr(name=name):
                return lambda st: st.attrs.get(name)
            case P.ModelScore(name=name):
                return lambda st: st.scores.get(name, 0.0)
            case P.TotalScore():
                return lambda st: st.total
            case P.LabelOf(name=name):
                return lambda st: st.labels.get(name)
        raise AssertionError(subject)

    def _build(self, cond: P.Cond) -> Pred:
        match cond:
            case P.Cmp(subject=s, op=op, value=value, exact=exact):
                get = self._value(s)
                cmp = _compare(op)
                if isinstance(value, bool):
                    return lambda st: (
                        (v := get(st)) is not None and isinstance(v, bool) and cmp(v, value)
                    )
                if isinstance(value, float):

                    def num(st: EvalState) -> bool:
                        v = get(st)
                        return (
                            isinstance(v, (int, float))
                            and not isinstance(v, bool)
                            and cmp(v, value)
                        )

                    return num
                want = _fold(value, exact)

                def text(st: EvalState) -> bool:
                    v = get(st)
                    if _missing(v) or isinstance(v, bool):
                        return False  # a boolean never equals text
                    return cmp(_fold(v if isinstance(v, str) else _as_text(v), exact), want)

                return text
            case P.In(subject=s, values=values, negated=negated, exact=exact):
                get = self._value(s)
                nums = frozenset(
                    v for v in values if isinstance(v, float) and not isinstance(v, bool)
                )
                texts = frozenset(_fold(v, exact) for v in values if isinstance(v, str))
                # Kept apart from the numbers: in Python True == 1, in the language it is not.
                truths = tuple(v for v in values if isinstance(v, bool))

                def member(st: EvalState) -> bool:
                    v = get(st)
                    if _missing(v):
                        return False
                    if isinstance(v, bool):
                        found = any(v is b for b in truths)
                    elif isinstance(v, (int, float)):
                        found = v in nums or _as_text(v) in texts
                    else:
                        found = _fold(str(v), exact) in texts
                    return found != negated

                return member
            case P.Text(subject=s, kind=kind, value=value, exact=exact):
                get = self._value(s)
                want = _fold(value, exact)
                test: Callable[[str, str], bool] = {
                    "contains": lambda a, b: b in a,
                    "starts": str.startswith,
                    "ends": str.endswith,
                }[kind]

                def text_test(st: EvalState) -> bool:
                    v = get(st)
                    if _missing(v) or isinstance(v, bool):
                        return False
                    return test(_fold(v if isinstance(v, str) else _as_text(v), exact), want)

                return text_test
            case P.Present(subject=s, present=present):
                get = self._value(s)
                return lambda st: (not _missing(get(st))) == present
            case P.EventCount(at_least=k, window=w):
                slot = self._counter(cond)

                def count(st: EvalState) -> bool:
                    times = st.counters[slot]
                    if w is None:
                        # A live state keeps the count, and only the recent times.
                        return (len(times) if st.counts is None else st.counts[slot]) >= k
                    as_of = st.as_of or 0.0
                    return sum(1 for t in times if as_of - t <= w) >= k

                return count
            case P.Gained(model=m, window=span, op=op, value=value):
                cmp = _compare(op)
                return lambda st: cmp(self._gained(st, m, span), value)
            case P.Inactive(window=w):
                return lambda st: st.last_time is None or (st.as_of or 0.0) - st.last_time > w
            case P.IsQualified():
                return lambda st: st.qualified
            case P.IsDisqualified():
                return lambda st: bool(st.reasons)
            case P.AllOf(items=items):
                preds = tuple(self._pred(i) for i in items)
                return lambda st: all(p(st) for p in preds)
            case P.AnyOf(items=items):
                preds = tuple(self._pred(i) for i in items)
                return lambda st: any(p(st) for p in preds)
            case P.Negate(item=item):
                inner = self._pred(item)
                return lambda st: not inner(st)
        raise AssertionError(f"no evaluator for {cond!r}")

    def _counter(self, cond: P.EventCount) -> int:
        key = (cond.action, cond.object, cond.name)
        if key not in self._counter_keys:
            self._counter_keys.append(key)
        return self._counter_keys.index(key)

    def _gained(self, st: EvalState, model: str | None, window: float) -> float:
        """Undecayed points the model's event rules counted from events of the last window."""
        st = self.detailed(st)
        as_of = st.as_of or 0.0
        parts = []
        for i, rule in enumerate(self._rules):
            if model is not None and rule.model != model:
                continue
            recent = sum(1 for e in st.selected[i] if as_of - e[0] <= window) * rule.points
            if rule.limit is not None and abs(recent) > rule.limit:
                recent = math.copysign(rule.limit, recent)
            parts.append(recent)
        return _fsum(parts)


def adjustment_rows(st: EvalState) -> tuple[Contribution, ...]:
    """explain() rows of manual adjustments: the reason as the rule, the adjustment's id."""
    return tuple(
        Contribution(
            model=model,
            rule=f"adjusted by hand: {reason}",
            line=0,
            points=points,
            before_cap=points,
            raw=points,
            capped=False,
            events=(eid,),
            kind="adjustment",
            span=NO_SPAN,
            account=getattr(st, "account_id", None),
        )
        for _t, eid, model, points, reason in st.adjustments
    )


def _as_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
