"""Compile a checked script (AST + Scope) into a Plan. Runs only on scripts without errors."""

from __future__ import annotations

import graphlib

import attrs

from . import ast as A
from . import plan as P
from .checks import label_dependencies
from .diagnostics import Source
from .scope import DEFAULT_MODEL, Scope, account_script, build_scope, iter_rules

__all__ = ["compile_plan"]


def _subject(subject: A.Subject, scope: Scope) -> P.Subject:
    if isinstance(subject, A.Total):
        return P.TotalScore()
    kind = scope.resolve(subject.name)
    if kind == "model":
        return P.ModelScore(subject.name)
    if kind == "ladder":
        return P.LabelOf(subject.name)
    return P.Attr(subject.name)


def condition(node: A.Condition, scope: Scope) -> P.Cond:
    """The plan form of one condition."""
    match node:
        case A.Compare(subject=s, op=op, value=v, exact=exact):
            return P.Cmp(_subject(s, scope), op, v.value, exact)
        case A.InList(subject=s, values=values, negated=negated, exact=exact):
            return P.In(_subject(s, scope), tuple(v.value for v in values), negated, exact)
        case A.TextTest(subject=s, kind=kind, value=v, exact=exact):
            return P.Text(_subject(s, scope), kind, str(v.value), exact)
        case A.Presence(subject=s, present=present):
            return P.Present(_subject(s, scope), present)
        case A.EventTest():
            action, obj, name = scope.event_pattern(node)
            return P.EventCount(
                action,
                obj,
                name,
                int(node.at_least or 1),
                None if node.within is None else node.within.seconds,
            )
        case A.Velocity(subject=s, within=w, op=op, value=v):
            model = None if isinstance(s, A.Total) else s.name
            return P.Gained(model, w.seconds, op, float(v.value))
        case A.Inactive(within=w):
            return P.Inactive(w.seconds)
        case A.QualifiedRef():
            return P.IsQualified()
        case A.DisqualifiedRef():
            return P.IsDisqualified()
        case A.And(items=items):
            return P.AllOf(tuple(condition(i, scope) for i in items))
        case A.Or(items=items):
            return P.AnyOf(tuple(condition(i, scope) for i in items))
        case A.Not(item=item):
            return P.Negate(condition(item, scope))
        case A.AggregateTest(aggregate=agg, op=op, value=v):
            return P.AggCmp(aggregate(agg, scope), op, float(v.value))
        case A.AnyContact(where=where, qualified=qualified):
            return P.AnyMember(_member(where, scope), qualified)
        case A.AllContacts(where=where):
            member = _member(where, scope)
            assert member is not None
            return P.AllMembers(member)
    raise AssertionError(f"the checks let through an account test outside accounts: {node!r}")


def _member(where: A.Condition | None, scope: Scope) -> P.Cond | None:
    """A where clause tests one contact, so its names resolve in the contacts' scope."""
    assert scope.members is not None, "account tests compile only in an account block"
    return None if where is None else condition(where, scope.members)


def aggregate(node: A.AggregateExpr, scope: Scope) -> P.Agg | P.CountOf | P.RolesCount:
    match node:
        case A.Aggregate(fn=fn, by=by, top=top, where=where):
            return P.Agg(fn, by, None if top is None else int(top), _member(where, scope))
        case A.CountContacts(where=where):
            return P.CountOf(_member(where, scope))
        case A.CountRoles(where=where):
            return P.RolesCount(_member(where, scope))
    raise AssertionError(node)


def _event_rule(index: int, model: str, rule: A.Rule, scope: Scope, src: Source) -> P.EventRule:
    assert isinstance(rule.condition, A.EventTest)
    action, obj, name = scope.event_pattern(rule.condition)
    mods = {type(m): m for m in rule.modifiers}
    limit = mods.get(A.Limit)
    within = mods.get(A.Within)
    return P.EventRule(
        index,
        model,
        action,
        obj,
        name,
        rule.points,
        limit=limit.value if isinstance(limit, A.Limit) else None,
        once=A.Once in mods,
        per_name=A.OncePerName in mods,
        window=within.duration.seconds if isinstance(within, A.Within) else None,
        additive=A.Additive in mods,
        text=src.span_text(rule.span),
        span=rule.span,
    )


def _numeric_attributes(plan_conds: list[P.Cond], schema: dict[str, str] | None) -> frozenset[str]:
    out = {name for name, t in (schema or {}).items() if t == "number"}
    for cond in plan_conds:
        for node in _walk(cond):
            if (
                isinstance(node, P.Cmp)
                and isinstance(node.subject, P.Attr)
                and isinstance(node.value, float)
                and not isinstance(node.value, bool)
            ):
                out.add(node.subject.name)
            if (
                isinstance(node, P.In)
                and isinstance(node.subject, P.Attr)
                and node.values
                and all(isinstance(v, float) and not isinstance(v, bool) for v in node.values)
            ):
                out.add(node.subject.name)
    return frozenset(out)


def _walk(cond: P.Cond) -> list[P.Cond]:
    out = [cond]
    if isinstance(cond, (P.AllOf, P.AnyOf)):
        for item in cond.items:
            out.extend(_walk(item))
    elif isinstance(cond, P.Negate):
        out.extend(_walk(cond.item))
    return out


def member_conditions(plan: P.Plan) -> list[P.Cond]:
    """The where clauses (contact conditions) inside an account plan."""
    conds = [r.condition for r in plan.condition_rules]
    conds += [d.condition for d in plan.disqualify] + [q.condition for q in plan.qualify]
    conds += [r.condition for s in plan.ladders for r in s.rungs if r.condition is not None]
    wheres = [a.aggregate.where for a in plan.aggregates]
    for cond in conds:
        for node in _walk(cond):
            if isinstance(node, P.AggCmp):
                wheres.append(node.aggregate.where)
            elif isinstance(node, (P.AnyMember, P.AllMembers)):
                wheres.append(node.where)
    return [w for w in wheres if w is not None]


def compile_plan(script: A.Script, scope: Scope, src: Source) -> P.Plan:
    """Turn a script that passed the checks into its Plan."""
    models: dict[str, P.Model] = {}
    event_rules: list[P.EventRule] = []
    condition_rules: list[P.ConditionRule] = []
    all_conds: list[P.Cond] = []
    # A rule's index is its place in the script, so explain() lists rules as they are written
    # even when the default model's rules sit between score blocks.
    position = {id(rule): i for i, (_, rule) in enumerate(iter_rules(script))}

    def add_model(name: str, items: tuple[A.Statement, ...]) -> None:
        half_life = expire = None
        additive = False
        for item in items:
            if isinstance(item, A.Decay):
                half_life = item.half_life.seconds
            elif isinstance(item, A.Expire):
                expire = item.after.seconds
            elif isinstance(item, A.ModelAdditive):
                additive = True
        models[name] = P.Model(name, half_life, expire, additive)
        for item in items:
            if not isinstance(item, A.Rule):
                continue
            index = position[id(item)]
            cond = item.condition
            if isinstance(cond, A.EventTest) and cond.at_least is None and cond.within is None:
                rule = _event_rule(index, name, item, scope, src)
                if additive:
                    rule = attrs.evolve(rule, additive=True)
                event_rules.append(rule)
            else:
                pc = condition(cond, scope)
                all_conds.append(pc)
                condition_rules.append(
                    P.ConditionRule(
                        index, name, pc, item.points, src.span_text(item.span), item.span
                    )
                )

    top_level = tuple(
        s for s in script.statements if isinstance(s, (A.Rule, A.Decay, A.Expire, A.ModelAdditive))
    )
    aggregates: list[P.AggregateRule] = []
    for stmt in script.statements:
        if isinstance(stmt, A.ScoreBlock):
            add_model(stmt.name, stmt.items)
        elif isinstance(stmt, A.AggregateScore):
            models[stmt.name] = P.Model(stmt.name)
            agg = aggregate(stmt.aggregate, scope)
            aggregates.append(
                P.AggregateRule(stmt.name, agg, src.span_text(stmt.span), stmt.span)
            )
        elif stmt is (top_level[0] if top_level else None):
            add_model(DEFAULT_MODEL, top_level)

    disqualify = []
    qualify = []
    ladders: dict[str, P.Ladder | P.Combined] = {}
    for stmt in script.statements:
        match stmt:
            case A.Disqualify(reason=reason, condition=cond):
                pc = condition(cond, scope)
                all_conds.append(pc)
                text = src.span_text(cond.span)
                disqualify.append(
                    P.DisqualifyLine(reason or text, pc, src.span_text(stmt.span), stmt.span.line)
                )
            case A.Qualify(condition=cond):
                pc = condition(cond, scope)
                all_conds.append(pc)
                terms = cond.items if isinstance(cond, A.And) else (cond,)
                parts = tuple((src.span_text(t.span), condition(t, scope)) for t in terms)
                qualify.append(P.QualifyLine(pc, src.span_text(stmt.span), stmt.span.line, parts))
            case A.Classify(name=name, rungs=rungs):
                prungs = []
                for rung in rungs:
                    pc_r = None if rung.condition is None else condition(rung.condition, scope)
                    if pc_r is not None:
                        all_conds.append(pc_r)
                    prungs.append(P.Rung(rung.label, pc_r, src.span_text(rung.span)))
                ladders[name] = P.Ladder(name, tuple(prungs))
            case A.Combine(name=name, parts=combine_parts):
                ladders[name] = P.Combined(name, tuple(_part(p) for p in combine_parts))

    order = graphlib.TopologicalSorter(label_dependencies(script, scope)).static_order()
    steps: list[P.Step] = [ladders.get(name, name) for name in order]
    account = None
    block = account_script(script)
    if block is not None:
        account = _account(block, build_scope(block, members=scope), src)
    numeric = _numeric_attributes(all_conds, scope.schema)
    if account is not None:
        numeric |= _numeric_attributes(member_conditions(account.plan), None)
    return P.Plan(
        models=tuple(models.values()),
        event_rules=tuple(event_rules),
        condition_rules=tuple(condition_rules),
        disqualify=tuple(disqualify),
        qualify=tuple(qualify),
        steps=tuple(steps),
        numeric_attributes=numeric,
        schema=tuple((scope.schema or {}).items()),
        aggregates=tuple(aggregates),
        account=account,
        source=src.text,
        filename=src.filename,
    )


def _account(block: A.Script, scope: Scope, src: Source) -> P.AccountPlan:
    weights: tuple[tuple[str, float], ...] = ()
    rollup = "none"
    for stmt in block.statements:
        if isinstance(stmt, A.Weight):
            weights = stmt.roles
        elif isinstance(stmt, A.Rollup):
            rollup = stmt.mode
    return P.AccountPlan(compile_plan(block, scope, src), weights, rollup)


def _part(part: A.Part) -> tuple[str, str]:
    match part:
        case A.LabelPart(name=name):
            return ("label", name)
        case A.RankPart(name=name):
            return ("rank", name)
        case A.TextPart(text=text):
            return ("text", text)
    raise AssertionError(part)
