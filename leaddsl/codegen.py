"""Specialised Python for one script: the batch scorer that profiling asked for.

The closure evaluator (ruleset.py) walks generic structures for every contact: per rule, is
there a window? a half-life? a cap? which closure tests this attribute? This module writes,
once per Ruleset, a Python function with those answers fixed: each rule's reduction spelled
out, each condition inlined as an expression over local variables, each attribute read and
case-folded once per contact. It computes exactly what the closure evaluator computes, with
the same floating-point operations in the same order, so the two agree to the last bit (the
tests check that on generated scripts), and the closure evaluator stays the reference.

The function returns a *summary* state: scores, labels and flags, the event-test counters,
but not the per-rule event lists. ``explain()`` and anything else that needs those replays
the contact through the closure evaluator (``Ruleset.detailed``).

Safety, as generated code demands: the source holds only names this module invents
(``s3``, ``a0``, ``K12``); every value from the script — attribute names, texts, numbers,
labels, reasons — reaches the function as data in its namespace, never as source text.
``source_map`` ties each generated line to the line of the script it implements.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from . import plan as P

if TYPE_CHECKING:
    from .ruleset import EvalState, Ruleset

__all__ = ["Generated", "generate"]

_OPS = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_NUM = (int, float)


class Generated:
    """A generated scorer: ``fn(attrs, events, as_of, adjustments) -> EvalState``, and its
    second half ``finish(state, per_model, every)``: from the rules' points to the totals,
    labels and flags (live results come in there, with the points of their summaries)."""

    def __init__(
        self,
        fn: Callable[..., EvalState],
        finish: Callable[[EvalState, dict[str, list[float]], list[float]], EvalState],
        source: str,
        source_map: dict[int, int],
        counters: int,
    ) -> None:
        self.fn = fn
        self.finish = finish
        self.source = source
        self.source_map = source_map  # generated line number -> the script's line
        self.counters = counters  # event tests it counts: a later filter may add more


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: object, exact: bool) -> str | None:
    """An attribute as text for comparison, or None when a text test must be false."""
    if _missing(value) or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value if exact else value.casefold()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    return text if exact else text.casefold()


def _within(times: list[float], as_of: float, window: float) -> int:
    return sum(1 for t in times if as_of - t <= window)


class _Writer:
    """Source lines, constants and the line map of one generated function."""

    def __init__(self, rules: Ruleset) -> None:
        self.rules = rules
        self.lines: list[str] = []
        self.spans: dict[int, int] = {}
        self.ns: dict[str, Any] = {
            "_missing": _missing,
            "_text": _text,
            "_within": _within,
            "_NUM": _NUM,
            "_fsum": math.fsum,
            "_copysign": math.copysign,
        }
        self._consts: dict[tuple[type, object], str] = {}
        self.attrs: dict[str, int] = {}  # attribute name -> index of its local a<i>
        self.texts: set[tuple[int, bool]] = set()  # (attribute, exact) needing a text form
        self.line = 0  # the script line being implemented (0: none)

    def emit(self, line: str, indent: int = 1) -> None:
        self.lines.append("    " * indent + line)
        if self.line:
            self.spans[len(self.lines)] = self.line

    def const(self, value: object) -> str:
        """The invented name of a value (equal values of one type share a name)."""
        key = (type(value), value)
        name = self._consts.get(key)
        if name is None:
            name = f"K{len(self._consts)}"
            self._consts[key] = name
            self.ns[name] = value
        return name

    def obj(self, prefix: str, value: object) -> str:
        """A name for an object passed in as is (a closure, a tuple)."""
        name = f"{prefix}{len(self.ns)}"
        self.ns[name] = value
        return name

    def attr(self, name: str) -> str:
        i = self.attrs.setdefault(name, len(self.attrs))
        return f"a{i}"

    def text(self, name: str, exact: bool) -> str:
        i = self.attrs.setdefault(name, len(self.attrs))
        self.texts.add((i, exact))
        return f"{'x' if exact else 't'}{i}"

    # ---- conditions ---------------------------------------------------------------------

    def cond(self, cond: P.Cond, late: bool) -> str:
        """A Python expression of bools equal to the closure of ``cond`` on the state.

        ``late``: scores, the total and labels are set on the state (ladders, qualify and
        disqualify lines); condition rules run before (``late`` False) and then read what the
        closures read, through them.
        """
        match cond:
            case P.AllOf(items=items):  # all() of nothing is true, any() of nothing false
                return "(" + (" and ".join(self.cond(i, late) for i in items) or "True") + ")"
            case P.AnyOf(items=items):
                return "(" + (" or ".join(self.cond(i, late) for i in items) or "False") + ")"
            case P.Negate(item=item):
                return f"(not {self.cond(item, late)})"
            case P.Cmp(subject=P.Attr(name=name), op=op, value=value, exact=exact):
                if isinstance(value, bool):
                    a = self.attr(name)
                    return f"(type({a}) is bool and {a} {_OPS[op]} {self.const(value)})"
                if isinstance(value, float):
                    a = self.attr(name)
                    return (
                        f"(isinstance({a}, _NUM) and type({a}) is not bool"
                        f" and {a} {_OPS[op]} {self.const(value)})"
                    )
                t = self.text(name, exact)
                want = value if exact else value.casefold()
                return f"({t} is not None and {t} {_OPS[op]} {self.const(want)})"
            case P.Cmp(subject=P.ModelScore(name=name), op=op, value=float() as value) if late:
                k = self.const(value)
                return f"(scores.get({self.const(name)}, 0.0) {_OPS[op]} {k})"
            case P.Cmp(subject=P.TotalScore(), op=op, value=float() as value) if late:
                return f"(total {_OPS[op]} {self.const(value)})"
            case P.Text(subject=P.Attr(name=name), kind=kind, value=value, exact=exact):
                t = self.text(name, exact)
                want = self.const(value if exact else value.casefold())
                test = {
                    "contains": f"{want} in {t}",
                    "starts": f"{t}.startswith({want})",
                    "ends": f"{t}.endswith({want})",
                }[kind]
                return f"({t} is not None and {test})"
            case P.In(subject=P.Attr(name=name), values=values, negated=negated, exact=exact) if (
                all(isinstance(v, str) for v in values)
            ):
                # A list of text only: a number is compared as its text, a boolean is in no
                # such list, and a missing value makes `in` and `not in` both false.
                t = self.text(name, exact)
                texts = [v for v in values if isinstance(v, str)]  # (all of them)
                want = self.const(frozenset(v if exact else v.casefold() for v in texts))
                found = f"({t} is not None and {t} in {want})"
                if not negated:
                    return found
                return f"(not _missing({self.attr(name)}) and not {found})"
            case P.Present(subject=P.Attr(name=name), present=present):
                return f"(_missing({self.attr(name)}) is {self.const(not present)})"
            case P.EventCount(action=a, object=o, name=n, at_least=k, window=w):
                slot = self.rules._counter_keys.index((a, o, n))
                if w is None:  # a live state counts all time, and keeps only recent times
                    return f"(n{slot} >= {self.const(k)})"
                return f"(_within(c{slot}, when, {self.const(w)}) >= {self.const(k)})"
            case P.Inactive(window=w):
                return f"(last is None or when - last > {self.const(w)})"
            case P.IsQualified() if late:
                return "st.qualified"
            case P.IsDisqualified() if late:
                return "(st.reasons != ())"
        # Anything else (lists, labels, velocity, …) runs its closure on the state as it is now.
        return f"{self.obj('F', self.rules._pred(cond))}(st)"


def generate(rules: Ruleset) -> Generated:
    """Write the scorer of ``rules`` (a contact Ruleset, not an account block)."""
    w = _Writer(rules)
    plan = rules.plan
    n_rules, n_counters = len(rules._rules), len(rules._counter_keys)
    # Rules that keep (time, id, name) to break ties among firsts; the others keep times.
    full = [r.once or r.per_name for r in rules._rules]
    w.ns["RS"] = rules
    w.ns["new_state"] = _state_maker()
    w.ns["PLAIN"] = {}  # event key -> number of its slots in HITS
    w.ns["HITS"] = []
    w.ns["TARGETS"] = rules._targets
    w.ns["MEMO_LIMIT"] = 200_000

    body: list[str] = []
    w.lines = body
    # ---- per rule: the reduction of _rule_outcome and _finish, spelled out --------------------
    models = {m: i for i, m in enumerate(rules._models)}
    for i, rule in enumerate(rules._rules):
        w.line = rule.span.line
        s = f"s{i}"
        w.emit(f"if {s}:")
        horizon, hl = rules._horizon[i], rules._half_life[i]
        at = "e[0]" if full[i] else "e"
        if horizon != math.inf:
            w.emit(f"{s} = [e for e in {s} if as_of - {at} <= {w.const(horizon)}]", 2)
        if rule.once:
            w.emit(f"if {s}:", 2)
            w.emit(f"{s} = [min({s})]", 3)
        elif rule.per_name:
            w.emit(f"if {s}:", 2)
            w.emit("first = {}", 3)
            w.emit(f"for e in {s}:", 3)
            w.emit("if e[2] not in first or e < first[e[2]]:", 4)
            w.emit("first[e[2]] = e", 5)
            w.emit(f"{s} = sorted(first.values())", 3)
        pts = w.const(rule.points)
        if hl is None:
            w.emit(f"d = _fsum([{pts}] * len({s}))", 2)
        else:
            w.emit(f"d = _fsum([{pts} * 0.5 ** ((as_of - {at}) / {w.const(hl)}) for e in {s}])", 2)
        if rule.limit is not None:
            lim = w.const(rule.limit)
            w.emit(f"if abs(d) > {lim}:", 2)
            w.emit(f"d = _copysign({lim}, d)", 3)
        # Only a window can empty the list (a first of a non-empty list always exists).
        deep = 2
        if horizon != math.inf:
            w.emit(f"if {s}:", 2)
            deep = 3
        w.emit(f"m{models[rule.model]}.append(d)", deep)
        w.emit("every.append(d)", deep)
    w.line = 0
    w.emit("return finish(st, per_model, every)")
    body_spans, w.spans = w.spans, {}

    # ---- finish: condition rules, adjustments, totals, steps (live results use it too) ---------
    finish: list[str] = []
    w.lines = finish
    hits = []
    for j, crule in enumerate(plan.condition_rules):
        w.line = crule.span.line
        w.emit(f"h{j} = {w.cond(crule.condition, late=False)}")
        w.emit(f"if h{j}:")
        w.emit(f"m{models[crule.model]}.append({w.const(crule.points)})", 2)
        w.emit(f"every.append({w.const(crule.points)})", 2)
        hits.append(f"h{j}")
    w.line = 0
    w.emit(f"st.condition_hits = [{', '.join(hits)}]")
    w.emit("for adj in st.adjustments:")
    w.emit("per_model[adj[2]].append(adj[3])", 2)
    w.emit("every.append(adj[3])", 2)
    w.emit("scores = st.scores = {" + ", ".join(
        f"{w.const(m)}: _fsum(m{i})" for m, i in models.items()) + "}")
    w.emit("total = st.total = _fsum(every)")
    # ---- steps: _classify --------------------------------------------------------------------
    labels_used = False
    for kind, data in rules._steps:
        if kind == "disqualified":
            w.emit("why = []")
            for line in plan.disqualify:
                w.line = line.line
                w.emit(f"if {w.cond(line.condition, late=True)}:")
                w.emit(f"why.append({w.const(line.reason)})", 2)
            w.line = 0
            w.emit("st.reasons = tuple(why)")
        elif kind == "qualified":
            tests = []
            for qline in plan.qualify:
                tests.append(w.cond(qline.condition, late=True))
            w.line = plan.qualify[0].line if len(plan.qualify) == 1 else 0
            w.emit("st.qualified = not st.reasons and (" + (" or ".join(tests) or "False") + ")")
            w.line = 0
        elif kind == "ladder":
            labels_used = True
            name, rungs = data
            key = w.const(name)
            for rank, (label, pred) in enumerate(rungs, 1):
                test = "True" if pred is None else w.cond(_rung(plan, name, rank), late=True)
                w.emit(f"{'if' if rank == 1 else 'elif'} {test}:")
                w.emit(f"labels[{key}] = {w.const(label)}", 2)
                w.emit(f"ranks[{key}] = {w.const(rank)}", 2)
        else:
            labels_used = True
            pieces = []
            for k, v in data.parts:
                c = w.const(v)
                pieces.append(
                    f"labels[{c}]" if k == "label" else f"str(ranks[{c}])" if k == "rank" else c
                )
            w.emit(f"labels[{w.const(data.name)}] = ''.join(({''.join(p + ', ' for p in pieces)}))")
    w.emit("return st")

    head: list[str] = []
    w.lines = head
    w.line = 0
    w.emit("def score(attrs, events, as_of, adjustments):", 0)
    # Events go to their rules by key, grouped in C passes (map, deque) rather than one
    # Python step per event: every reduction after it (fsum, min, counts) ignores order.
    w.emit("last = None")
    w.emit("if events:")
    w.emit("ts = list(map(_at, events))", 2)
    w.emit("last = max(ts)", 2)
    w.emit("if as_of is None:", 2)
    w.emit("as_of = last", 3)
    w.emit("elif last > as_of:  # events after the as-of time have not happened yet", 2)
    w.emit("events = [e for e in events if e[0] <= as_of]", 3)
    w.emit("ts = list(map(_at, events))", 3)
    w.emit("last = max(ts) if ts else None", 3)
    w.emit("st = new_state(RS, attrs, as_of)")
    w.emit("if adjustments:")
    w.emit("limit = math_inf if as_of is None else as_of", 2)
    w.emit("st.adjustments = [a for a in adjustments if a[0] <= limit]", 2)
    w.ns["math_inf"] = math.inf
    w.ns["_at"] = itemgetter(0)
    w.ns["_key"] = itemgetter(2)  # (action, object, name): one tuple per key from an Engine
    w.ns["_append"] = list.append
    w.ns["_drain"] = deque(maxlen=0).extend
    w.ns["_group"] = partial(defaultdict, list)
    slots = n_rules + n_counters
    w.emit(f"sel = [{', '.join(['[]'] * slots)}]" if slots else "sel = []")
    # Events are grouped by what they hit (an int per distinct set of slots): fewer groups
    # than keys, since names vary more than the rules they hit.
    w.emit("if events:")
    w.emit("hits = list(map(PLAIN.get, map(_key, events)))", 2)
    w.emit("if None in hits:  # keys not seen yet", 2)
    w.emit("hits = [index(_key(e)) if h is None else h for h, e in zip(hits, events)]", 3)
    w.emit("by_hit = _group()", 2)
    w.emit("_drain(map(_append, map(by_hit.__getitem__, hits), ts))", 2)
    if any(full):
        w.emit("of_hit = _group()", 2)
        w.emit("_drain(map(_append, map(of_hit.__getitem__, hits), events))", 2)
    w.emit("for hit, group in by_hit.items():", 2)
    w.emit("times, firsts = HITS[hit]", 3)
    w.emit("for i in times:", 3)
    w.emit("sel[i] += group", 4)
    if any(full):
        w.emit("if firsts:", 3)
        w.emit("xs = [(e[0], e[1], e[2][2]) for e in of_hit[hit]]", 4)
        w.emit("for i in firsts:", 4)
        w.emit("sel[i] += xs", 5)
    w.emit("st.last_time = last")
    for i in range(n_rules):
        w.emit(f"s{i} = sel[{i}]")
    w.emit(f"st.counters = sel[{n_rules}:]")
    w.emit("per_model = {" + ", ".join(f"{w.const(m)}: []" for m in models) + "}")
    for m, i in models.items():
        w.emit(f"m{i} = per_model[{w.const(m)}]")
    w.emit("every = []")

    # finish(st, per_model, every): the state holds attrs, as_of, last_time, counters (and
    # counts, for a live state), adjustments.
    top: list[str] = []
    w.lines = top
    w.emit("def finish(st, per_model, every):", 0)
    w.emit("attrs = st.attrs")
    w.emit("as_of = st.as_of")
    w.emit("when = as_of or 0.0")
    w.emit("last = st.last_time")
    w.emit("counters = st.counters")
    w.emit("counts = st.counts")
    for slot in range(n_counters):
        w.emit(f"c{slot} = counters[{slot}]")
        w.emit(f"n{slot} = len(c{slot}) if counts is None else counts[{slot}]")
    for m, i in models.items():
        w.emit(f"m{i} = per_model[{w.const(m)}]")
    if labels_used:
        w.emit("labels = st.labels")
        w.emit("ranks = st.ranks")
    for name, i in w.attrs.items():
        w.emit(f"a{i} = attrs.get({w.const(name)})")
    for i, exact in sorted(w.texts):
        # Text, the usual case, inline: _text's answer without the call.
        text = f"a{i}" if exact else f"a{i}.casefold()"
        w.emit(f"{'x' if exact else 't'}{i} = ({text} if a{i}.strip() else None) "
               f"if type(a{i}) is str else _text(a{i}, {exact})")

    # Events to slots: rules keeping times, then rules keeping (time, id, name); counters keep
    # times and sit after the rules. Built from the Ruleset's own index, so specificity is the
    # closure evaluator's.
    plain: dict[tuple[str, str | None, str | None], int] = w.ns["PLAIN"]
    targets = rules._targets

    slot_sets: list[tuple[tuple[int, ...], tuple[int, ...]]] = w.ns["HITS"]
    numbers: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}

    def index(key: tuple[str, str | None, str | None]) -> int:
        """The number of the slots ``key`` goes to: (slots keeping times, slots keeping
        (time, id, name)) in HITS."""
        rule_ids, counter_ids = targets(key)
        hit = (
            tuple(r for r in rule_ids if not full[r]) + tuple(n_rules + c for c in counter_ids),
            tuple(r for r in rule_ids if full[r]),
        )
        number = numbers.get(hit)
        if number is None:  # few: one per distinct set of rules and counters hit
            number = numbers[hit] = len(slot_sets)
            slot_sets.append(hit)
        if len(plain) < w.ns["MEMO_LIMIT"]:
            plain[key] = number
        return number

    w.ns["index"] = index
    # The line map: body lines follow head; finish's lines follow its prelude, after score.
    lines = head + body + [""] + top + finish
    source_map: dict[int, int] = {}
    for n, script_line in w.spans.items():  # the lines of the last list written (finish)
        source_map[len(head) + len(body) + 1 + len(top) + n] = script_line
    for n, script_line in body_spans.items():
        source_map[len(head) + n] = script_line
    source = "\n".join(lines) + "\n"
    code = compile(source, f"<leaddsl generated: {plan.filename}>", "exec")
    namespace = dict(w.ns)
    exec(code, namespace)  # noqa: S102 - our own source: invented names, values as data
    return Generated(namespace["score"], namespace["finish"], source, source_map, n_counters)


def _rung(plan: P.Plan, ladder: str, rank: int) -> P.Cond:
    for step in plan.steps:
        if isinstance(step, P.Ladder) and step.name == ladder:
            cond = step.rungs[rank - 1].condition
            assert cond is not None
            return cond
    raise AssertionError(ladder)


def _state_maker() -> Callable[[Ruleset, Mapping[str, Any], float | None], EvalState]:
    from .ruleset import EvalState

    return EvalState
