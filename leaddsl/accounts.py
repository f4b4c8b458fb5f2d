"""Account scoring: the account block evaluated over an account's member contacts.

An account's **own** scores come from its attributes (fit rules) and from aggregates over its
eligible contacts: the members that are not disqualified. ``rollup to parent`` then folds in the
subsidiaries: with ``sum`` a parent's scores are its own plus its (not disqualified) direct
subsidiaries' rolled-up scores, so, recursively, the whole subtree, each contact counted once,
through the one account it belongs to; with ``max`` each model takes the highest of the parent's
own and its subsidiaries'; ``none`` leaves the parent alone. Ladders, qualify and disqualify lines
then read the rolled-up scores, and their tests on contacts see the group: the account's own
eligible contacts and, when rolling up, those of its counted subsidiaries.

The account block reuses the contact evaluator: an AccountRules is a Ruleset over the block's
plan whose states carry the contacts the tests look at; where clauses are predicates of the
contacts' Ruleset, run on each contact's own evaluation state.

This is the reference meaning of the account block, and the evaluator of the Python paths
(the live engine, score_all, explain). The batch backends run the same block compiled to SQL
(leaddsl.sql.accounts); the differential and conformance tests hold the two together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from . import plan as P
from .records import to_datetime
from .results import ContactResult, Contribution, QualifyCheck, result_dict
from .ruleset import EvalState, Pred, Ruleset, _compare, adjustment_rows

__all__ = ["AccountRules", "AccountState", "AccountResult"]

_fsum = math.fsum

# One contact's part in an aggregate: (contact id, value after its role's weight).
Part = tuple[str, float]


class AccountState(EvalState):
    """An account while it is scored; kept by its result for explain() and missing()."""

    __slots__ = (
        "own",
        "group",
        "pool",
        "children",
        "aggregate_parts",
        "own_scores",
        "own_total",
        "winners",
        "account_id",
    )

    def __init__(self, rules: AccountRules, attrs_: Mapping[str, Any], as_of: float | None):
        super().__init__(rules, attrs_, as_of)
        self.account_id = str(attrs_["id"])
        self.own: list[ContactResult] = []  # eligible direct members
        self.group: list[ContactResult] = []  # own, plus counted subsidiaries' groups
        self.pool: list[ContactResult] = []  # what tests on contacts look at right now
        self.children: list[AccountResult] = []  # subsidiaries whose scores were folded in
        self.aggregate_parts: list[tuple[float, tuple[Part, ...]]] = []
        self.own_scores: dict[str, float] = {}
        self.own_total = 0.0
        self.winners: dict[str, AccountResult | None] = {}  # rollup max: who gave each model


@attrs.frozen(hash=False)
class AccountResult:
    """An account's scores at an as-of time; the same shape as a ContactResult.

    ``members`` are all its direct contacts, disqualified ones included; ``eligible`` those that
    count. ``subsidiaries`` are the direct ones.
    """

    id: str
    total: float
    scores: Mapping[str, float]
    labels: Mapping[str, str]
    qualified: bool
    disqualified: bool
    reasons: tuple[str, ...]
    as_of: datetime | None
    members: tuple[str, ...] = ()
    eligible: tuple[str, ...] = ()
    parent: str | None = None
    subsidiaries: tuple[str, ...] = ()
    state: AccountState | None = attrs.field(default=None, eq=False, repr=False)

    def explain(self) -> tuple[Contribution, ...]:
        """Every rule that gave points, with the contacts behind them; rows add up to ``total``.

        Rows of subsidiaries folded in by the rollup follow the account's own rows, each naming
        its account.
        """
        if self.state is None:
            return ()
        rules = self.state.ruleset
        assert isinstance(rules, AccountRules)
        return rules.contributions_of(self.state)

    def missing(self) -> tuple[QualifyCheck, ...]:
        """For each qualify line: which of its terms hold and which fail."""
        if self.state is None:
            return ()
        return self.state.ruleset.qualify_checks(self.state)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: a contact result's keys, and the account's place in the graph."""
        return {
            **result_dict(self),
            "members": list(self.members),
            "eligible": list(self.eligible),
            "parent": self.parent,
            "subsidiaries": list(self.subsidiaries),
        }


def _role(c: ContactResult) -> str | None:
    assert c.state is not None
    role = c.state.attrs.get("role")
    if not isinstance(role, str) or not role.strip():
        return None
    return role.strip().casefold()


class AccountRules(Ruleset):
    """The account block of a script, built into closures like a contact ruleset."""

    def __init__(
        self, account: P.AccountPlan, members: Ruleset, extra: tuple[P.Cond, ...] = ()
    ) -> None:
        # Set before the base class builds the conditions: account tests need them.
        self.account_plan = account
        self.members = members
        self.rollup = account.rollup
        self._weights = {role.strip().casefold(): w for role, w in account.weights}
        super().__init__(account.plan, extra=extra, generated=False)
        self._aggregates = tuple(self._measure(a.aggregate) for a in account.plan.aggregates)
        # Only `inactive for` reads the time of the latest contact event; skip it otherwise.
        self._uses_time = any(isinstance(c, P.Inactive) for c in self._compiled)

    def weight(self, c: ContactResult) -> float:
        role = _role(c)
        return 1.0 if role is None else self._weights.get(role, 1.0)

    # ---- scoring ---------------------------------------------------------------------------

    def score_account(
        self,
        attrs_: Mapping[str, Any],
        members: Sequence[ContactResult],
        children: Sequence[AccountResult],
        as_of: float | None,
        parent: str | None = None,
        adjustments: Sequence[tuple[float, str, str, float, str]] = (),
    ) -> AccountResult:
        """Score one account from its direct members and its scored direct subsidiaries."""
        st = AccountState(self, attrs_, as_of)
        st.own = [c for c in members if not c.disqualified]
        counted = [] if self.rollup == "none" else [a for a in children if not a.disqualified]
        st.children = counted
        st.group = list(st.own)
        for child in counted:
            assert child.state is not None
            st.group.extend(child.state.group)

        # Own scores: aggregates and rules over the account's own contacts.
        st.pool = st.own
        if self._uses_time:
            st.last_time = _last_time(st.own)
        per_model: dict[str, list[float]] = {m: [] for m in self._models}
        every: list[float] = []
        for rule, measure in zip(self.plan.aggregates, self._aggregates, strict=True):
            value, parts = measure(st.own)
            value = 0.0 if value is None else value
            st.aggregate_parts.append((value, parts))
            per_model[rule.model].append(value)
            every.append(value)
        st.adjustments = [a for a in adjustments if as_of is None or a[0] <= as_of]
        self._tally_conditions(st, per_model, every)
        st.own_scores = {m: _fsum(v) for m, v in per_model.items()}
        st.own_total = _fsum(every)

        # Rolled-up scores, then labels and flags over the whole group.
        if self.rollup == "max":
            st.scores = {}
            for m, own in st.own_scores.items():
                best, winner = own, None
                for child in counted:
                    if child.scores.get(m, 0.0) > best:
                        best, winner = child.scores[m], child
                st.scores[m] = best
                st.winners[m] = winner
            st.total = _fsum(st.scores.values())
        elif counted:
            st.scores = {
                m: _fsum([own, *(c.scores.get(m, 0.0) for c in counted)])
                for m, own in st.own_scores.items()
            }
            st.total = _fsum([st.own_total, *(c.total for c in counted)])
        else:
            st.scores, st.total = dict(st.own_scores), st.own_total
        st.pool = st.group
        if self._uses_time:
            st.last_time = _last_time(st.group)
        self._classify(st)
        return AccountResult(
            id=st.account_id,
            total=st.total,
            scores=dict(st.scores),
            labels=dict(st.labels),
            qualified=st.qualified,
            disqualified=bool(st.reasons),
            reasons=st.reasons,
            as_of=to_datetime(as_of),
            members=tuple(c.id for c in members),
            eligible=tuple(c.id for c in st.own),
            parent=parent,
            subsidiaries=tuple(a.id for a in children),
            state=st,
        )

    # ---- account tests ---------------------------------------------------------------------

    def _member_test(self, where: P.Cond | None, qualified: bool = False) -> Callable[..., bool]:
        inner = None if where is None else self.members._pred(where)

        def test(c: ContactResult) -> bool:
            if qualified and not c.qualified:
                return False
            return inner is None or inner(c.state)  # type: ignore[arg-type]

        return test

    def _measure(
        self, agg: P.Agg | P.CountOf | P.RolesCount, with_parts: bool = True
    ) -> Callable[[Sequence[ContactResult]], tuple[float | None, tuple[Part, ...]]]:
        """The value of an aggregate over some contacts (None: no contact to take it from),
        and each contact's part in it (left out by a test, which needs only the number)."""
        test = self._member_test(agg.where)
        if isinstance(agg, P.CountOf):

            def count(pool: Sequence[ContactResult]) -> tuple[float | None, tuple[Part, ...]]:
                if not with_parts:  # a test needs only the number
                    return float(sum(1 for c in pool if test(c))), ()
                rows = tuple((c.id, 1.0) for c in pool if test(c))
                return float(len(rows)), rows

            return count
        if isinstance(agg, P.RolesCount):

            def roles(pool: Sequence[ContactResult]) -> tuple[float | None, tuple[Part, ...]]:
                first: dict[str, str] = {}
                for c in pool:
                    role = _role(c)
                    if role is not None and role not in first and c.total > 0 and test(c):
                        first[role] = c.id
                return float(len(first)), tuple((cid, 1.0) for cid in first.values())

            return roles
        by, fn, top = agg.by, agg.fn, agg.top
        weight = self.weight if self._weights else None
        keep = None if agg.where is None else test

        def measure(pool: Sequence[ContactResult]) -> tuple[float | None, tuple[Part, ...]]:
            if keep is not None:
                pool = [c for c in pool if keep(c)]
            if by == "score":
                values = [c.total for c in pool]
            else:
                values = [c.scores.get(by, 0.0) for c in pool]
            if weight is None:
                rows = [(v, c, 1.0) for v, c in zip(values, pool, strict=True)]
            else:
                rows = []
                for v, c in zip(values, pool, strict=True):
                    w = weight(c)
                    if w:  # a weight of 0 leaves the contact out
                        rows.append((w * v, c, w))
            if top is not None:
                rows.sort(key=lambda r: (-r[0], r[1].id))
                rows = rows[:top]
            if not rows:
                return (0.0 if fn == "sum" else None), ()
            parts = tuple((c.id, v) for v, c, _ in rows)
            if fn == "sum":
                return _fsum(v for v, _, _ in rows), parts
            if fn == "avg":
                weights = _fsum(w for _, _, w in rows)
                if weights <= 0:
                    return None, parts
                return _fsum(v for v, _, _ in rows) / weights, parts
            # max or min: the contact that gives it (on a tie, the first id).
            sign = -1.0 if fn == "max" else 1.0
            value, pick, _ = min(rows, key=lambda r: (sign * r[0], r[1].id))
            return value, ((pick.id, value),)

        return measure

    def _build(self, cond: P.Cond) -> Pred:
        match cond:
            case P.AggCmp(aggregate=agg, op=op, value=value):
                measure = self._measure(agg, with_parts=False)
                cmp = _compare(op)

                def aggregate_test(st: EvalState) -> bool:
                    v = measure(st.pool)[0]  # type: ignore[attr-defined]
                    return v is not None and cmp(v, value)

                return aggregate_test
            case P.AnyMember(where=where, qualified=qualified):
                test = self._member_test(where, qualified)
                return lambda st: any(test(c) for c in st.pool)  # type: ignore[attr-defined]
            case P.AllMembers(where=where):
                test = self._member_test(where)
                return lambda st: bool(st.pool) and all(  # type: ignore[attr-defined]
                    test(c)
                    for c in st.pool  # type: ignore[attr-defined]
                )
        return super()._build(cond)

    # ---- explanation ---------------------------------------------------------------------

    def _witnesses(self, cond: P.Cond, pool: Sequence[ContactResult]) -> tuple[Part, ...]:
        """The contacts that the account tests in a condition found, with their scores."""
        by_id = {c.id: c for c in pool}
        found: dict[str, float] = {}
        stack = [cond]
        while stack:
            node = stack.pop()
            if isinstance(node, (P.AllOf, P.AnyOf)):
                stack.extend(node.items)
            elif isinstance(node, P.Negate):
                stack.append(node.item)
            elif isinstance(node, P.AggCmp):
                for cid, _ in self._measure(node.aggregate)(pool)[1]:
                    found.setdefault(cid, by_id[cid].total)
            elif isinstance(node, (P.AnyMember, P.AllMembers)):
                test = self._member_test(
                    node.where, isinstance(node, P.AnyMember) and node.qualified
                )
                for c in pool:
                    if test(c):
                        found.setdefault(c.id, c.total)
        return tuple(found.items())

    def own_contributions(self, st: AccountState) -> list[Contribution]:
        rows: list[tuple[int, Contribution]] = []
        for rule, (value, parts) in zip(self.plan.aggregates, st.aggregate_parts, strict=True):
            if value == 0:
                continue  # like a rule that did not fire: nothing to explain
            rows.append(
                (
                    rule.span.start,
                    _row(rule.model, rule.text, rule.span, value, "aggregate", st, parts),
                )
            )
        for crule, hit in zip(self.plan.condition_rules, st.condition_hits, strict=True):
            if hit:
                parts = self._witnesses(crule.condition, st.own)
                points = crule.points
                row = _row(crule.model, crule.text, crule.span, points, "condition", st, parts)
                rows.append((crule.span.start, row))
        rows.sort(key=lambda r: r[0])
        return [c for _, c in rows] + list(adjustment_rows(st))

    def contributions_of(self, st: AccountState) -> tuple[Contribution, ...]:
        """The account's rows, then each rolled-in subsidiary's, depth first (no recursion:
        hierarchies may be deep). With max, a level keeps the models it won."""
        out: list[Contribution] = []
        stack: list[tuple[AccountState, frozenset[str] | None]] = [(st, None)]
        while stack:
            state, allowed = stack.pop()
            if self.rollup == "max":
                won = frozenset(
                    m for m in state.scores if state.winners.get(m) is None
                    and (allowed is None or m in allowed)
                )
                out += [c for c in self.own_contributions(state) if c.model in won]
            else:
                out += self.own_contributions(state)
            for child in reversed(state.children):
                assert child.state is not None
                keep = None
                if self.rollup == "max":
                    keep = frozenset(
                        m for m, w in state.winners.items() if w is child
                        and (allowed is None or m in allowed)
                    )
                stack.append((child.state, keep))
        return tuple(out)


def _row(
    model: str,
    text: str,
    span: Any,
    points: float,
    kind: str,
    st: AccountState,
    parts: tuple[Part, ...],
) -> Contribution:
    return Contribution(
        model=model,
        rule=text,
        line=span.line,
        points=points,
        before_cap=points,
        raw=points,
        capped=False,
        events=(),
        kind=kind,
        span=span,
        account=st.account_id,
        contacts=parts,
    )


def _last_time(contacts: Sequence[ContactResult]) -> float | None:
    times = [
        c.state.last_time
        for c in contacts
        if c.state is not None and c.state.last_time is not None
    ]
    return max(times) if times else None

