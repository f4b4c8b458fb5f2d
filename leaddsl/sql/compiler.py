"""A contact plan compiled to one SQL query, as sqlglot expression trees.

The query reads two relations:

- ``events``: ``contact``, ``t`` (epoch seconds, DOUBLE), ``action``, ``object``, ``name`` —
  valid events only, each (contact, id) once;
- ``contacts``: ``id`` and, per attribute the rules read, four normalized columns
  (see :func:`attribute_columns`): its text, its number, its boolean and whether it is present.
  The normalization carries the Python evaluator's typing (a boolean never equals text, a
  missing or blank value makes every comparison false) so that SQL's NULL never leaks through.

and yields one row per contact: ``id``, ``score:<model>`` per model, ``total``,
``label:<ladder>`` per ladder and combined label, ``qualified``, ``disqualified``, ``reasons``
(the disqualify reasons that hold, in script order), ``last_t`` (the latest event's time) and
``where:<k>`` per contact test of the account block (see :attr:`ContactSQL.member_tests`).

**One pass** (``reference``, for leaddsl.batch): when the as-of time is the latest event and
no rule needs an event's age at that time (see :meth:`ContactSQL.one_pass`), the per-contact
aggregates can be computed while the events are read, before the as-of time is known: decay
is summed as ``2 ** ((t - r) / h)`` for the fixed reference time ``r`` and scaled by
``0.5 ** ((as_of - r) / h)`` afterwards, and `visited X within W` reads the latest matching
event. :meth:`ContactSQL.aggregation` gives those aggregates as a query of their own.

User text (names, strings, attribute names) becomes sqlglot literals and quoted identifiers
only; nothing is pasted into SQL text.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from sqlglot import exp

from .. import plan as P

__all__ = ["ContactSQL", "attribute_columns", "attributes_of", "member_conditions"]

_FALSE = exp.false()
_TRUE = exp.true()


# ---- small builders ---------------------------------------------------------------------


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=None if table is None else ident(table))


def lit(value: str | float | bool) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    return num(value)


def num(value: float) -> exp.Expr:
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    text = repr(float(value))
    if value < 0:
        return exp.Paren(this=exp.Neg(this=exp.Literal.number(text[1:])))
    return exp.Literal.number(text)


def dbl(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, exp.DataType.build("DOUBLE"))


def coalesce(e: exp.Expr, default: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=e, expressions=[default])


def holds(e: exp.Expr) -> exp.Expr:
    """A condition that is never NULL: NULL (a missing value) counts as false."""
    return coalesce(exp.Paren(this=e), _FALSE.copy())


def and_(items: Sequence[exp.Expr]) -> exp.Expr:
    if not items:
        return _TRUE.copy()
    return exp.and_(*items)


def or_(items: Sequence[exp.Expr]) -> exp.Expr:
    if not items:
        return _FALSE.copy()
    return exp.or_(*items)


def compare(op: str, a: exp.Expr, b: exp.Expr) -> exp.Expr:
    cls = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}[op]
    return cls(this=a, expression=b)


def case(whens: Sequence[tuple[exp.Expr, exp.Expr]],
         default: exp.Expr | None = None) -> exp.Expr:
    c = exp.Case()
    for cond, value in whens:
        c = c.when(cond, value)
    if default is not None:
        c = c.else_(default)
    return c


def count_if(cond: exp.Expr) -> exp.Expr:
    return exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=cond))


def agg_if(fn: type[exp.Expr], value: exp.Expr, cond: exp.Expr) -> exp.Expr:
    return exp.Filter(this=fn(this=value), expression=exp.Where(this=cond))


def decay(age: exp.Expr, half_life: float) -> exp.Expr:
    return exp.Pow(this=num(0.5), expression=exp.Div(this=exp.Paren(this=age),
                                                      expression=num(half_life)))


def clamp(value: exp.Expr, limit: float | None) -> exp.Expr:
    """A rule's cap: at most ``limit`` either way, keeping the sign (math.copysign)."""
    if limit is None:
        return value
    over = exp.GT(this=exp.Abs(this=value.copy()), expression=num(limit))
    return case([(over, exp.Mul(this=exp.Sign(this=value.copy()), expression=num(limit)))],
                value.copy())


# ---- what the plan reads ---------------------------------------------------------------------


def walk(cond: P.Cond | None, into_where: bool = True) -> Iterator[P.Cond]:
    """Every condition node under ``cond`` (account tests' where clauses too, if asked)."""
    stack = [] if cond is None else [cond]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (P.AllOf, P.AnyOf)):
            stack.extend(node.items)
        elif isinstance(node, P.Negate):
            stack.append(node.item)
        elif into_where and isinstance(node, P.AggCmp) and node.aggregate.where is not None:
            stack.append(node.aggregate.where)
        elif into_where and isinstance(node, (P.AnyMember, P.AllMembers)) and node.where:
            stack.append(node.where)


def plan_conditions(plan: P.Plan) -> Iterator[P.Cond]:
    for r in plan.condition_rules:
        yield r.condition
    for d in plan.disqualify:
        yield d.condition
    for q in plan.qualify:
        yield q.condition
    for ladder in plan.ladders:
        for rung in ladder.rungs:
            if rung.condition is not None:
                yield rung.condition


def member_conditions(account: P.AccountPlan) -> tuple[P.Cond, ...]:
    """The contact conditions the account block tests its members with, each once, in order."""
    found: dict[P.Cond, None] = {}
    wheres: list[P.Cond | None] = [a.aggregate.where for a in account.plan.aggregates]
    for cond in plan_conditions(account.plan):
        for node in walk(cond, into_where=False):
            if isinstance(node, P.AggCmp):
                wheres.append(node.aggregate.where)
            elif isinstance(node, (P.AnyMember, P.AllMembers)):
                wheres.append(node.where)
    for w in wheres:
        if w is not None:
            found.setdefault(w, None)
    return tuple(found)


def attributes_of(conds: Sequence[P.Cond]) -> tuple[str, ...]:
    """The attribute names these conditions read, in first-use order."""
    names: dict[str, None] = {}
    for cond in conds:
        for node in walk(cond):
            subject = getattr(node, "subject", None)
            if isinstance(subject, P.Attr):
                names.setdefault(subject.name, None)
    return tuple(names)


def attribute_columns(name: str) -> tuple[str, str, str, str, str]:
    """The normalized columns of an attribute: its text, that text case-folded, its number,
    its boolean, whether it is present (not missing, not blank)."""
    return (f"t:{name}", f"f:{name}", f"n:{name}", f"b:{name}", f"p:{name}")


# ---- the contact query -----------------------------------------------------------------------


class ContactSQL:
    """Builds the contact query of a plan. ``as_of``: a fixed time, or None for the latest
    event in ``events``. ``extra``: contact conditions to compute as ``where:<k>`` columns
    (the account block's member tests)."""

    def __init__(
        self,
        plan: P.Plan,
        *,
        events: str = "events",
        contacts: str = "contacts",
        as_of: float | None = None,
        extra: Sequence[P.Cond] = (),
        as_of_sql: exp.Expr | None = None,
        reference: float | None = None,
        aggregated: str | None = None,
    ) -> None:
        self.plan = plan
        self.events = events
        self.contacts = contacts
        self.as_of = as_of
        self.as_of_sql = as_of_sql  # an expression for the as-of time (batch: its stats)
        # One pass (see one_pass): decay weights relative to this fixed time, and the
        # per-contact aggregates read from the relation ``aggregated`` (see aggregation()).
        self.reference = reference
        self.aggregated = aggregated
        if reference is not None and not ContactSQL.one_pass(plan, extra):
            raise ValueError("this plan reads each event's age at the as-of time: it cannot "
                             "be scored in one pass")
        self.member_tests = tuple(extra)
        self.attributes = attributes_of([*plan_conditions(plan), *extra])
        self._rules = plan.event_rules
        self._model_of = {m.name: m for m in plan.models}
        self._aggs: dict[str, exp.Expr] = {}  # per-contact aggregates over events
        self._per_name: list[tuple[str, P.EventRule, list[float]]] = []
        self._counters: dict[tuple[str, str | None, str | None, float | None], str] = {}
        self._gained: dict[tuple[int, float], str] = {}
        self._steps = {s.name: s for s in plan.steps if isinstance(s, (P.Ladder, P.Combined))}
        self._stage = "rules"  # which results conditions may read: rules < scores
        self._half_lives: list[float] = []
        self._slots: dict[str, exp.Expr] = {}  # model -> its rule-choice column (see _slot)

    # ---- the pieces of an event --------------------------------------------------------------

    def _asof(self) -> exp.Expr:
        if self.as_of_sql is not None:
            return self.as_of_sql.copy()
        if self.as_of is not None:
            return num(self.as_of)
        return exp.Subquery(this=exp.select(col("v")).from_(ident("as_of_time")))

    def _age(self) -> exp.Expr:
        return col("age")  # the ev CTE computes it once per event

    def _weight(self, half_life: float) -> exp.Expr:
        """An event's decay factor at the as-of time, computed once per event and half-life."""
        if half_life not in self._half_lives:
            self._half_lives.append(half_life)
        return col(f"w{self._half_lives.index(half_life)}")

    @staticmethod
    def _match(action: str, object_: str | None, name: str | None) -> exp.Expr:
        parts: list[exp.Expr] = [exp.EQ(this=col("action"), expression=lit(action))]
        if object_ is not None:
            parts.append(exp.EQ(this=col("object"), expression=lit(object_)))
        if name is not None:
            parts.append(exp.EQ(this=col("name"), expression=lit(name)))
        # NULL (no object or name) reads as false in a FILTER; negations wrap it in holds().
        return and_(parts)

    def _horizon(self, rule: P.EventRule) -> float:
        expire = self._model_of[rule.model].expire
        return min(w for w in (rule.window, expire, math.inf) if w is not None)

    def _selected(self, rule: P.EventRule) -> exp.Expr:
        """An event this rule scores: it matches, no more specific rule of its model takes it
        (unless the rule is additive), and it is inside the rule's horizon."""
        slot = None if rule.additive else self._slot(rule.model)
        if slot is not None:
            # The model's rule for the event was chosen once per event (an integer test).
            parts: list[exp.Expr] = [
                exp.EQ(this=slot, expression=exp.Literal.number(self._rules.index(rule)))]
        else:
            parts = [self._match(rule.action, rule.object, rule.name)]
            if not rule.additive:
                for other in self._rules:
                    if (
                        other.model == rule.model
                        and not other.additive
                        and other.action == rule.action
                        and other.specificity > rule.specificity
                    ):
                        shadow = self._match(other.action, other.object, other.name)
                        parts.append(exp.Not(this=holds(shadow)))
        horizon = self._horizon(rule)
        if horizon != math.inf:
            parts.append(exp.LTE(this=self._age(), expression=num(horizon)))
        return and_(parts)

    def _slot(self, model: str) -> exp.Expr | None:
        """The column holding which of a model's (non-additive) rules scores an event: the most
        specific that matches, found by one CASE per event. None when two of them share a
        pattern (both score the event; their filters then say so each)."""
        mine = [r for r in self._rules if r.model == model and not r.additive]
        patterns = [(r.action, r.object, r.name) for r in mine]
        if len(mine) < 2 or len(set(patterns)) < len(patterns):
            return None
        if model not in self._slots:
            ordered = sorted(mine, key=lambda r: -r.specificity)  # stable: script order
            self._slots[model] = case([
                (self._match(r.action, r.object, r.name),
                 exp.Literal.number(self._rules.index(r))) for r in ordered])
        return col(f"s{list(self._slots).index(model)}")

    def _agg(self, name: str, expression: exp.Expr) -> exp.Expr:
        self._aggs.setdefault(name, expression)
        return col(name)

    # ---- rule outcomes ---------------------------------------------------------------------

    def _decayed(self, i: int, rule: P.EventRule) -> exp.Expr:
        """The rule's points before its cap (0 when no event counts)."""
        hl = self._model_of[rule.model].half_life
        pts = num(rule.points)
        if rule.per_name:
            table = f"pn{i}"
            self._per_name.append((table, rule, []))
            value = col(f"{table}:d" if hl is not None else f"{table}:n")
            return exp.Mul(this=pts, expression=coalesce(dbl(value), num(0.0)))
        sel = self._selected(rule)
        if rule.once:
            first = self._agg(f"f{i}", agg_if(exp.Min, col("t"), sel))
            one = num(1.0) if hl is None else decay(
                exp.Sub(this=self._asof(), expression=first.copy()), hl)
            return case([(exp.Is(this=first.copy(), expression=exp.Null()), num(0.0))],
                        exp.Mul(this=pts, expression=one))
        if hl is None:
            n = self._agg(f"n{i}", count_if(sel))
            return exp.Mul(this=pts, expression=dbl(coalesce(n, num(0.0))))
        d = self._agg(f"d{i}", agg_if(exp.Sum, self._weight(hl), sel))
        if self.reference is not None:
            # Summed 2 ** ((t - r) / h); times 0.5 ** ((as_of - r) / h) is the decayed sum.
            d = exp.Mul(this=d, expression=decay(
                exp.Sub(this=self._asof(), expression=num(self.reference)), hl))
        return exp.Mul(this=pts, expression=coalesce(d, num(0.0)))

    def _recent(self, i: int, rule: P.EventRule, window: float) -> exp.Expr:
        """How many of the events rule ``i`` counts are from the last ``window`` seconds."""
        if rule.per_name:
            for table, r, windows in self._per_name:
                if r is rule:
                    if window not in windows:
                        windows.append(window)
                    return dbl(coalesce(col(f"{table}:g{windows.index(window)}"), num(0.0)))
            raise AssertionError(rule)
        sel = self._selected(rule)
        if rule.once:
            first = self._agg(f"f{i}", agg_if(exp.Min, col("t"), sel))
            age = exp.Sub(this=self._asof(), expression=first)
            recent = exp.LTE(this=age, expression=num(window))
            return case([(holds(recent), num(1.0))], num(0.0))
        key = (i, window)
        if key not in self._gained:
            self._gained[key] = f"g{i}_{len(self._gained)}"
        within = and_([sel, exp.LTE(this=self._age(), expression=num(window))])
        return dbl(coalesce(self._agg(self._gained[key], count_if(within)), num(0.0)))

    # ---- conditions ------------------------------------------------------------------------

    def _text(self, subject: P.Subject, exact: bool) -> exp.Expr:
        match subject:
            case P.Attr(name=name):
                # The folded text is computed beside the text (Python's casefold, not LOWER).
                return col(attribute_columns(name)[0 if exact else 1])
            case P.LabelOf(name=name):
                return self._label(name, folded=not exact)
        raise AssertionError(f"text of {subject!r}")

    def _number(self, subject: P.Subject) -> exp.Expr:
        match subject:
            case P.Attr(name=name):
                return col(attribute_columns(name)[2])
            case P.ModelScore(name=name):
                return col(f"score:{name}") if self._stage == "scores" else num(0.0)
            case P.TotalScore():
                return col("total") if self._stage == "scores" else num(0.0)
        raise AssertionError(f"number of {subject!r}")

    def _present(self, subject: P.Subject) -> exp.Expr:
        match subject:
            case P.Attr(name=name):
                return col(attribute_columns(name)[4])
            case P.LabelOf(name=name):
                return exp.Not(this=exp.Is(this=self._label(name), expression=exp.Null()))
        return _TRUE.copy()  # a score is never missing

    def _fold(self, value: str, exact: bool) -> exp.Expr:
        return lit(value if exact else value.casefold())

    def cond(self, c: P.Cond) -> exp.Expr:
        """A condition as a boolean that is never NULL."""
        match c:
            case P.Cmp(subject=s, op=op, value=value, exact=exact):
                if isinstance(value, bool):
                    if not isinstance(s, P.Attr):
                        return _FALSE.copy()
                    return holds(compare(op, col(attribute_columns(s.name)[3]), lit(value)))
                if isinstance(value, float):
                    return holds(compare(op, self._number(s), num(value)))
                return holds(compare(op, self._text(s, exact), self._fold(value, exact)))
            case P.In(subject=s, values=values, negated=negated, exact=exact):
                found: list[exp.Expr] = []
                truths = [v for v in values if isinstance(v, bool)]
                nums = [v for v in values if isinstance(v, float) and not isinstance(v, bool)]
                texts = [v for v in values if isinstance(v, str)]
                if isinstance(s, P.Attr):
                    _, _, n, b, _ = attribute_columns(s.name)
                    if truths:
                        found.append(holds(exp.In(this=col(b),
                                                  expressions=[lit(v) for v in truths])))
                    if nums:
                        found.append(holds(exp.In(this=col(n),
                                                  expressions=[num(v) for v in nums])))
                elif isinstance(s, (P.ModelScore, P.TotalScore)) and nums:
                    found.append(holds(exp.In(this=self._number(s),
                                              expressions=[num(v) for v in nums])))
                if texts and isinstance(s, (P.Attr, P.LabelOf)):
                    folded = [self._fold(v, exact) for v in texts]
                    found.append(holds(exp.In(this=self._text(s, exact), expressions=folded)))
                member = or_(found)
                if negated:
                    member = exp.Not(this=exp.Paren(this=member))
                return and_([self._present(s), member])
            case P.Text(subject=s, kind=kind, value=value, exact=exact):
                text = self._text(s, exact)
                want = self._fold(value, exact)
                if kind == "contains":
                    test: exp.Expr = exp.GT(
                        this=exp.StrPosition(this=text, substr=want), expression=num(0.0))
                elif kind == "starts":
                    test = exp.StartsWith(this=text, expression=want)
                else:
                    test = exp.EndsWith(this=text, expression=want)
                return holds(test)
            case P.Present(subject=s, present=present):
                p = self._present(s)
                return p if present else exp.Not(this=exp.Paren(this=p))
            case P.EventCount(action=a, object=o, name=n, at_least=k, window=w):
                key = (a, o, n, w)
                if key not in self._counters:
                    self._counters[key] = f"k{len(self._counters)}"
                match = holds(self._match(a, o, n))
                if w is not None and self.reference is not None:
                    # One pass (k is 1): some matching event within w of the as-of time, i.e.
                    # the latest one is.
                    latest = self._agg(self._counters[key], agg_if(exp.Max, col("t"), match))
                    age = exp.Sub(this=self._asof(), expression=latest)
                    return holds(exp.LTE(this=age, expression=num(w)))
                if w is not None:
                    match = and_([match, exp.LTE(this=self._age(), expression=num(w))])
                count = self._agg(self._counters[key], count_if(match))
                return holds(exp.GTE(this=coalesce(count, num(0.0)), expression=num(float(k))))
            case P.Gained(model=m, window=w, op=op, value=value):
                parts = [
                    clamp(exp.Mul(this=num(r.points), expression=self._recent(i, r, w)), r.limit)
                    for i, r in enumerate(self._rules)
                    if m is None or r.model == m
                ]
                gained = parts[0] if len(parts) == 1 else (
                    exp.Paren(this=_sum(parts)) if parts else num(0.0))
                return holds(compare(op, gained, num(value)))
            case P.Inactive(window=w):
                last = self._agg("last_t", exp.Max(this=col("t")))
                quiet = exp.GT(this=exp.Sub(this=self._asof(), expression=last.copy()),
                               expression=num(w))
                return or_([exp.Is(this=last, expression=exp.Null()), holds(quiet)])
            case P.IsQualified():
                return self._qualified()
            case P.IsDisqualified():
                return self._disqualified()
            case P.AllOf(items=items):
                return and_([self.cond(i) for i in items])
            case P.AnyOf(items=items):
                return or_([self.cond(i) for i in items])
            case P.Negate(item=item):
                return exp.Not(this=exp.Paren(this=self.cond(item)))
        raise NotImplementedError(f"no SQL for {type(c).__name__}")

    # ---- labels and flags ------------------------------------------------------------------

    def _rank(self, name: str) -> exp.Expr:
        ladder = self._steps[name]
        assert isinstance(ladder, P.Ladder)
        whens, default = [], None
        for i, rung in enumerate(ladder.rungs, 1):
            if rung.condition is None:
                default = num(float(i))
                break
            whens.append((self.cond(rung.condition), num(float(i))))
        return case(whens, default) if whens else (default or exp.Null())

    def _label(self, name: str, folded: bool = False) -> exp.Expr:
        """A ladder's (or combined label's) label; ``folded``: case-folded, for comparisons."""
        step = self._steps[name]

        def text(value: str) -> exp.Expr:
            return lit(value.casefold() if folded else value)

        if isinstance(step, P.Combined):
            parts: list[exp.Expr] = []
            for kind, value in step.parts:
                if kind == "label":
                    parts.append(self._label(value, folded))
                elif kind == "rank":
                    parts.append(exp.cast(exp.cast(self._rank(value), "BIGINT"), "VARCHAR"))
                else:
                    parts.append(text(value))
            return exp.Concat(expressions=parts) if len(parts) > 1 else parts[0]
        whens, default = [], None
        for rung in step.rungs:
            if rung.condition is None:
                default = text(rung.label)
                break
            whens.append((self.cond(rung.condition), text(rung.label)))
        return case(whens, default) if whens else (default or exp.Null())

    def _outcomes(self) -> list[exp.Expr]:
        """The columns every result row ends with: each ladder's label, then qualified,
        disqualified and the reasons."""
        out: list[exp.Expr] = [exp.alias_(self._label(name), f"label:{name}", quoted=True)
                               for name in self.plan.label_names]
        out.append(exp.alias_(self._qualified(), "qualified", quoted=True))
        out.append(exp.alias_(self._disqualified(), "disqualified", quoted=True))
        out.append(exp.alias_(self._reasons(), "reasons", quoted=True))
        return out

    def _disqualified(self) -> exp.Expr:
        return or_([self.cond(d.condition) for d in self.plan.disqualify])

    def _qualified(self) -> exp.Expr:
        return and_([exp.Not(this=exp.Paren(this=self._disqualified())),
                     or_([self.cond(q.condition) for q in self.plan.qualify])])

    def _reasons(self) -> exp.Expr:
        items = [case([(self.cond(d.condition), lit(d.reason))]) for d in self.plan.disqualify]
        if not items:
            return exp.cast(exp.Array(expressions=[]), "VARCHAR[]")
        x = ident("x")
        return exp.ArrayFilter(
            this=exp.Array(expressions=items),
            expression=exp.Lambda(
                this=exp.Not(this=exp.Is(this=exp.Column(this=x.copy()), expression=exp.Null())),
                expressions=[x],
            ),
        )

    # ---- the query -------------------------------------------------------------------------

    def query(self) -> exp.Select:
        """The whole query: one row per contact in ``contacts``."""
        # Scoring rules first: their conditions see no scores (the checker forbids them).
        self._stage = "rules"
        finals = [clamp(self._decayed(i, r), r.limit) for i, r in enumerate(self._rules)]
        hits = [self.cond(r.condition) for r in self.plan.condition_rules]
        self._stage = "scores"
        per_model: dict[str, list[exp.Expr]] = {m.name: [] for m in self.plan.models}
        for i, r in enumerate(self._rules):
            per_model[r.model].append(col(f"r{i}"))
        for k, c in enumerate(self.plan.condition_rules):
            per_model[c.model].append(case([(col(f"h{k}"), num(c.points))], num(0.0)))
        outputs: list[exp.Expr] = [col("id")]
        outputs += [exp.alias_(col(f"score:{m}"), f"score:{m}", quoted=True) for m in per_model]
        outputs.append(col("total"))
        outputs += self._outcomes()
        for k, where in enumerate(self.member_tests):
            outputs.append(exp.alias_(self.cond(where), f"where:{k}", quoted=True))
        self._agg("last_t", exp.Max(this=col("t")))
        outputs.append(col("last_t"))
        # Every aggregate is known now: build the CTEs from the inside out.
        q = exp.select(*outputs).from_(ident("scored"))
        scored = exp.select(
            exp.Star(),
            *[exp.alias_(_sum(parts) if parts else num(0.0), f"score:{m}", quoted=True)
              for m, parts in per_model.items()],
            exp.alias_(_sum([p.copy() for parts in per_model.values() for p in parts])
                       if any(per_model.values()) else num(0.0), "total", quoted=True),
        ).from_(ident("ruled"))
        ruled = exp.select(
            exp.Star(),
            *[exp.alias_(f, f"r{i}", quoted=True) for i, f in enumerate(finals)],
            *[exp.alias_(h, f"h{k}", quoted=True) for k, h in enumerate(hits)],
        ).from_(ident("base"))
        q = q.with_(ident("ruled"), ruled).with_(ident("scored"), scored)
        return self._inputs(q)

    def _inputs(self, q: exp.Select) -> exp.Select:
        """The CTEs before ``ruled``: as-of, events, per-contact aggregates, the base rows."""
        ctes: list[tuple[str, exp.Expr]] = []
        if self.as_of is None and self.as_of_sql is None:
            latest = exp.select(exp.alias_(coalesce(exp.Max(this=dbl(col("t"))), num(0.0)), "v",
                                           quoted=True)).from_(ident(self.events))
            ctes.append(("as_of_time", latest))
        # `once per name` rules' event choices first: they may add rule-choice columns to ev.
        per_name = [(table, self._per_name_cte(rule, windows))
                    for table, rule, windows in self._per_name]
        if self.aggregated is None:
            ctes.append(("ev", self._ev()))
            ctes.append(("agg", self._agg_select()))
            agg: exp.Expr = ident("agg")
        else:
            agg = exp.alias_(exp.to_table(self.aggregated, quoted=True), "agg", table=True,
                             quoted=True)
        base = exp.select(
            exp.Column(this=exp.Star(), table=ident("c")),
            *[col(n, "agg") for n in self._aggs],
        ).from_(exp.alias_(exp.to_table(self.contacts, quoted=True), "c", table=True, quoted=True))
        base = base.join(
            agg, on=exp.EQ(this=col("contact", "agg"), expression=col("id", "c")),
            join_type="left")
        for table, _rule, windows in self._per_name:
            ctes.append((table, dict(per_name)[table]))
            names = ["d", "n", *[f"g{j}" for j in range(len(windows))]]
            base = base.select(
                *[exp.alias_(col(c, table), f"{table}:{c}", quoted=True) for c in names],
                append=True)
            base = base.join(
                ident(table), on=exp.EQ(this=col("contact", table), expression=col("id", "c")),
                join_type="left")
        ctes.append(("base", base))
        # The CTEs go first, in order; ``ruled`` and ``scored`` were added to q already.
        return prepend(q, ctes)

    def _ev(self) -> exp.Select:
        """Each event with what the aggregates read: its age and decay weights (or, in one
        pass, its weights relative to the reference time) and its rule choices."""
        if self.reference is not None:
            ahead = exp.Sub(this=col("t"), expression=num(self.reference))
            weights = [exp.alias_(exp.Pow(this=num(2.0), expression=exp.Div(
                this=exp.Paren(this=ahead.copy()), expression=num(hl))), f"w{k}", quoted=True)
                for k, hl in enumerate(self._half_lives)]
        else:
            age = exp.Sub(this=self._asof(), expression=col("t"))
            weights = [exp.alias_(age, "age", quoted=True)]
            weights += [exp.alias_(decay(age.copy(), hl), f"w{k}", quoted=True)
                        for k, hl in enumerate(self._half_lives)]
        weights += [exp.alias_(choice, f"s{k}", quoted=True)
                    for k, choice in enumerate(self._slots.values())]
        ev = exp.select(col("contact"), col("t"), col("action"), col("object"), col("name"),
                        *weights).from_(ident(self.events))
        if self.reference is not None:
            return ev  # every event is at or before the as-of time: the latest one
        return ev.where(exp.LTE(this=col("t"), expression=self._asof()))

    def _agg_select(self) -> exp.Select:
        return exp.select(
            col("contact"), *[exp.alias_(e, n, quoted=True) for n, e in self._aggs.items()]
        ).from_(ident("ev")).group_by(col("contact"))

    def aggregation(self) -> exp.Select:
        """The per-contact aggregates over ``events`` (one pass: no as-of time needed), for
        the relation named by ``aggregated``. Call after :meth:`query`, which finds them."""
        return prepend(self._agg_select(), [("ev", self._ev())])

    @staticmethod
    def one_pass(plan: P.Plan, extra: Sequence[P.Cond] = ()) -> bool:
        """Whether the plan (and the ``extra`` contact conditions) can be scored in one pass
        over the events, before the as-of time (the latest event) is known: no rule window or
        expiry, no `once per name`, no velocity, no `at least N times within` with N above 1."""
        compiler = ContactSQL(plan)
        if any(r.per_name or compiler._horizon(r) != math.inf for r in plan.event_rules):
            return False
        for cond in [*plan_conditions(plan), *extra]:
            for node in walk(cond):
                if isinstance(node, P.Gained) or (
                        isinstance(node, P.EventCount) and node.window is not None
                        and node.at_least != 1):
                    return False
        return True

    def _per_name_cte(self, rule: P.EventRule, windows: list[float]) -> exp.Select:
        """`once per name`: the first event of each name, then per contact."""
        firsts = exp.select(col("contact"), col("name"),
                            exp.alias_(exp.Min(this=col("t")), "ft", quoted=True)).from_(
            ident("ev")).where(self._selected(rule)).group_by(col("contact"), col("name"))
        hl = self._model_of[rule.model].half_life
        age = exp.Sub(this=self._asof(), expression=col("ft"))
        cols: list[exp.Expr] = [
            col("contact"),
            exp.alias_(exp.Sum(this=decay(age, hl) if hl is not None else num(1.0)), "d",
                       quoted=True),
            exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True),
        ]
        for j, w in enumerate(windows):
            cols.append(exp.alias_(count_if(exp.LTE(this=age.copy(), expression=num(w))),
                                   f"g{j}", quoted=True))
        return exp.select(*cols).from_(exp.Subquery(this=firsts, alias=ident("f"))).group_by(
            col("contact"))


def prepend(q: exp.Select, ctes: Sequence[tuple[str, exp.Expr]]) -> exp.Select:
    """``q`` with these CTEs before the ones it has."""
    existing = list(q.args["with_"].expressions) if q.args.get("with_") else []
    made = [exp.CTE(this=body, alias=exp.TableAlias(this=ident(name))) for name, body in ctes]
    q.set("with_", exp.With(expressions=[*made, *existing]))
    return q


def _sum(parts: Sequence[exp.Expr]) -> exp.Expr:
    out = parts[0]
    for p in parts[1:]:
        out = exp.Add(this=out, expression=p)
    return exp.Paren(this=out)
