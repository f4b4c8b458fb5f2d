"""Semantic checks: (script, scope, source) -> diagnostics; each yields problems, never raises.

CHECKS lists them in the order they run; `check` runs them all, so one pass reports every
problem in the script, not just the first.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Iterator

from . import ast as A
from .diagnostics import Diagnostic, Source, make, suggest
from .scope import (
    ATTRIBUTE_TYPES,
    DEFAULT_MODEL,
    Scope,
    account_script,
    build_scope,
    iter_rules,
    member_tests,
    walk_conditions,
)

__all__ = ["CHECKS", "run_checks"]

Check = Callable[[A.Script, Scope, Source], Iterator[Diagnostic]]


def _type_of(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, float):
        return "number"
    return "text"


def _contact_statements(script: A.Script) -> Iterator[A.Statement]:
    yield from (s for s in script.statements if not isinstance(s, A.AccountBlock))


def _conditions(script: A.Script) -> Iterator[tuple[str, A.Condition, str]]:
    """(context, condition, owner) of every contact-level condition; context limits what it uses."""
    for model, rule in iter_rules(script):
        yield "rule", rule.condition, model
    for stmt in script.statements:
        if isinstance(stmt, A.Qualify):
            yield "qualify", stmt.condition, ""
        elif isinstance(stmt, A.Disqualify):
            yield "disqualify", stmt.condition, ""
        elif isinstance(stmt, A.Classify):
            for rung in stmt.rungs:
                if rung.condition is not None:
                    yield "ladder", rung.condition, stmt.name


# ---- definitions -------------------------------------------------------------------


def check_definitions(script: A.Script, scope: Scope, src: Source) -> Iterator[Diagnostic]:
    seen: dict[str, tuple[str, A.Span]] = {}
    for stmt in _contact_statements(script):
        match stmt:
            case A.ScoreBlock(name=name):
                kind, span = "score model", stmt.name_span
            case A.Classify(name=name) | A.Combine(name=name):
                kind, span = "ladder", stmt.name_span
            case A.AggregateScore(name=name):
                kind, span = "score model", stmt.span
            case _:
                continue
        if name in seen:
            other_kind, other = seen[name]
            yield make(
                src,
                "duplicate-name",
                "error",
                f"{kind} '{name}' is already defined as a {other_kind} on line {other.line}",
                span,
                "give it another name",
            )
        elif name == DEFAULT_MODEL and DEFAULT_MODEL in scope.models and kind == "score model":
            yield make(
                src,
                "duplicate-name",
                "error",
                "'default' is the model of the rules outside any score block",
                span,
                "give it another name",
            )
        else:
            seen[name] = (kind, span)
    for stmt in _contact_statements(script):
        if isinstance(stmt, A.Attributes):
            names: set[str] = set()
            for decl in stmt.decls:
                if decl.type not in ATTRIBUTE_TYPES:
                    hint = suggest(decl.type, ATTRIBUTE_TYPES)
                    yield make(
                        src,
                        "attribute-type",
                        "error",
                        f"unknown attribute type '{decl.type}'",
                        decl.type_span,
                        f"did you mean '{hint}'?" if hint else "use text, number or boolean",
                    )
                if decl.name in names:
                    yield make(
                        src,
                        "duplicate-attribute",
                        "error",
                        f"attribute '{decl.name}' is declared twice",
                        decl.span,
                    )
                names.add(decl.name)
    # Model options: one decay and one expiry per model, positive durations.
    blocks: list[tuple[str, tuple[A.Statement, ...]]] = [
        (DEFAULT_MODEL, tuple(_contact_statements(script)))
    ]
    blocks += [(s.name, s.items) for s in script.statements if isinstance(s, A.ScoreBlock)]
    for model, items in blocks:
        found: dict[type, A.Span] = {}
        for item in items:
            if isinstance(item, (A.Decay, A.Expire, A.ModelAdditive)):
                if type(item) in found:
                    yield make(
                        src,
                        "duplicate-option",
                        "error",
                        f"model '{model}' already has this option on line {found[type(item)].line}",
                        item.span,
                    )
                found[type(item)] = item.span
            if isinstance(item, A.Decay) and item.half_life.amount <= 0:
                yield make(
                    src,
                    "bad-duration",
                    "error",
                    "a half-life must be positive",
                    item.half_life.span,
                )
            if isinstance(item, A.Expire) and item.after.amount <= 0:
                yield make(
                    src, "bad-duration", "error", "an expiry must be positive", item.after.span
                )


# ---- rules -----------------------------------------------------------------------------


def _is_event_rule(rule: A.Rule) -> bool:
    """A rule whose whole condition is a plain event pattern scores per event."""
    c = rule.condition
    return isinstance(c, A.EventTest) and c.at_least is None and c.within is None


def check_rules(script: A.Script, scope: Scope, src: Source) -> Iterator[Diagnostic]:
    for _model, rule in iter_rules(script):
        kinds: dict[type, A.Span] = {}
        for mod in rule.modifiers:
            if type(mod) in kinds:
                yield make(
                    src,
                    "duplicate-modifier",
                    "error",
                    "this modifier is given twice in one rule",
                    mod.span,
                )
            kinds[type(mod)] = mod.span
        if A.Once in kinds and A.OncePerName in kinds:
            yield make(
                src,
                "modifier-clash",
                "error",
                "'once' and 'once per name' contradict each other",
                kinds[A.OncePerName],
                "keep one of them",
            )
        per_event = _is_event_rule(rule)
        if not per_event:
            for mod in rule.modifiers:
                if not isinstance(mod, A.Additive):
                    yield make(
                        src,
                        "modifier-on-condition",
                        "error",
                        "this modifier applies to rules on events; a rule on a condition "
                        "already counts once per contact",
                        mod.span,
                        "write the window inside the condition, e.g. "
                        "'visited pricing within 30 days'"
                        if isinstance(mod, A.Within)
                        else None,
                    )
        for mod in rule.modifiers:
            if isinstance(mod, A.Limit) and mod.value <= 0:
                yield make(src, "bad-limit", "error", "a limit must be positive", mod.span)
            if isinstance(mod, A.Within) and mod.duration.amount <= 0:
                yield make(src, "bad-duration", "error", "a window must be positive", mod.span)
        if rule.points == 0:
            yield make(src, "zero-points", "warning", "this rule gives 0 points", rule.span)


# ---- events ----------------------------------------------------------------------------------


def check_events(script: A.Script, scope: Scope, src: Source) -> Iterator[Diagnostic]:
    for _ctx, cond, _model in _conditions(script):
        for node in walk_conditions(cond):
            if not isinstance(node, A.EventTest):
                continue
            words = node.words
            if len(words) > 3 or (len(words) == 3 and (node.name or node.any_name)):
                yield make(
                    src,
                    "bad-event",
                    "error",
                    "an event pattern is ACTION [OBJECT] [NAME]: too many words",
                    node.span,
                    'quote a name with spaces or dashes: "Q4 launch"',
                )
                continue
            if node.at_least is not None and (node.at_least < 1 or node.at_least % 1):
                yield make(
                    src,
                    "bad-count",
                    "error",
                    "'at least N times' takes a whole number of 1 or more",
                    node.span,
                )
            if node.within is not None and node.within.amount <= 0:
                yield make(
                    src, "bad-duration", "error", "a window must be positive", node.within.span
                )
            if len(words) == 2 and not node.name and not node.any_name:
                word = words[1]
                if word in scope.objects:
                    continue
                if word in scope.object_words:
                    other = scope.object_words[word]
                    yield make(
                        src,
                        "ambiguous-event",
                        "warning",
                        f"'{word}' reads as an event name here, but line {other.line} uses it "
                        "as an object kind",
                        node.span,
                        f"write '{words[0]} {word} any' for the object kind, or "
                        f"'{words[0]} \"{word}\"' for the name",
                    )
                    continue
                near = suggest(word, scope.objects)
                if near and near != word:
                    yield make(
                        src,
                        "ambiguous-event",
                        "warning",
                        f"'{word}' reads as an event name, not an object kind",
                        node.span,
                        f"did you mean the object kind '{near}'? Write '{words[0]} "
                        f'"{word}"\' to keep the name',
                    )


# ---- names and types in conditions ----------------------------------------------------------


def _subjects(node: A.Condition) -> Iterator[A.Subject]:
    match node:
        case (
            A.Compare(subject=s)
            | A.InList(subject=s)
            | A.TextTest(subject=s)
            | A.Presence(subject=s)
            | A.Velocity(subject=s)
        ):
            yield s


def check_names(script: A.Script, scope: Scope, src: Source) -> Iterator[Diagnostic]:
    attribute_types: dict[str, tuple[str, A.Span]] = {}
    known = set(scope.models) | scope.label_names
    accounts = scope.members is not None
    for ctx, cond, owner in _conditions(script):
        if accounts:
            yield from _check_members(cond, scope, src)
        for node in walk_conditions(cond, into_where=not accounts):
            if isinstance(node, (A.AggregateTest, A.AnyContact, A.AllContacts)):
                if not accounts:
                    yield make(
                        src,
                        "account-only",
                        "error",
                        "this test is about an account's contacts; use it in an account block",
                        node.span,
                    )
                continue
            if accounts and isinstance(node, (A.EventTest, A.Velocity)):
                what = "events" if isinstance(node, A.EventTest) else "score gains"
                yield make(
                    src,
                    "account-events",
                    "error",
                    f"an account has no {what} of its own; its contacts do",
                    node.span,
                    "test them through the contacts, e.g. 'any contact where (visited pricing)'"
                    if isinstance(node, A.EventTest)
                    else "aggregate a contact model, e.g. 'sum of contacts by engagement'",
                )
                continue
            if ctx in ("qualify", "disqualify") and isinstance(
                node, (A.QualifiedRef, A.DisqualifiedRef)
            ):
                flag = "qualified" if isinstance(node, A.QualifiedRef) else "disqualified"
                decides = (
                    f"which the {ctx} lines decide"
                    if flag == {"qualify": "qualified", "disqualify": "disqualified"}[ctx]
                    else "which depends on disqualification"
                )
                yield make(
                    src,
                    "flag-uses-itself",
                    "error",
                    f"a {ctx} line cannot test '{flag}', {decides}",
                    node.span,
                    "test the scores and labels it depends on instead",
                )
            if ctx == "rule" and isinstance(node, (A.QualifiedRef, A.DisqualifiedRef)):
                yield make(
                    src,
                    "rule-uses-result",
                    "error",
                    "a scoring rule cannot depend on qualification, which is computed "
                    "from the scores",
                    node.span,
                    "use it in a classify ladder",
                )
            for subject in _subjects(node):
                if accounts and _contact_name(subject, scope):
                    assert isinstance(subject, A.Name) and scope.members is not None
                    what = "score model" if subject.name in scope.members.models else "ladder"
                    yield make(
                        src,
                        "contact-name",
                        "error",
                        f"'{subject.name}' is a contact {what}, not something an account has",
                        subject.span,
                        f"aggregate it, e.g. 'sum of contacts by {subject.name}'"
                        if what == "score model"
                        else f"test the contacts, e.g. 'any contact where {subject.name} = ...'",
                    )
                    continue
                yield from _check_subject(
                    node, subject, ctx, owner, scope, src, known, attribute_types
                )


def _contact_name(subject: A.Subject, scope: Scope) -> bool:
    """A name an account block uses that only its contacts define (a contact model or ladder)."""
    return (
        isinstance(subject, A.Name)
        and scope.members is not None
        and scope.resolve(subject.name) == "attribute"
        and scope.members.resolve(subject.name) != "attribute"
    )


def _check_members(cond: A.Condition, scope: Scope, src: Source) -> Iterator[Diagnostic]:
    """An account condition's where clauses and `by` names, against the contacts' scope."""
    members = scope.members
    assert members is not None
    known = set(members.models) | members.label_names
    attribute_types: dict[str, tuple[str, A.Span]] = {}
    for node in walk_conditions(cond, into_where=False):
        agg = node.aggregate if isinstance(node, A.AggregateTest) else None
        if isinstance(agg, A.Aggregate):
            yield from _check_by(agg, members, src)
    for where in member_tests(cond):
        for node in walk_conditions(where):
            if isinstance(node, (A.AggregateTest, A.AnyContact, A.AllContacts)):
                yield make(
                    src,
                    "nested-member-test",
                    "error",
                    "a where clause tests one contact; it cannot hold another test on contacts",
                    node.span,
                )
                continue
            for subject in _subjects(node):
                yield from _check_subject(
                    node, subject, "member", "", members, src, known, attribute_types
                )


def _check_by(agg: A.Aggregate, members: Scope, src: Source) -> Iterator[Diagnostic]:
    if agg.by != "score" and agg.by not in members.models:
        yield make(
            src,
            "unknown-name",
            "error",
            f"'{agg.by}' is not a contact score model; 'by' takes a model or 'score'",
            agg.span,
            _did_you_mean(agg.by, set(members.models) | {"score"}),
        )
    if agg.top is not None and (agg.top < 1 or agg.top % 1):
        yield make(
            src, "bad-count", "error", "'top N' takes a whole number of 1 or more", agg.span
        )


def _check_subject(
    node: A.Condition,
    subject: A.Subject,
    ctx: str,
    owner: str,
    scope: Scope,
    src: Source,
    known: set[str],
    attribute_types: dict[str, tuple[str, A.Span]],
) -> Iterator[Diagnostic]:
    if isinstance(subject, A.Total):
        kind, name = "model", "score"
    else:
        name = subject.name
        kind = scope.resolve(name)
    if ctx == "rule" and kind in ("model", "ladder") and not isinstance(node, A.Velocity):
        yield make(
            src,
            "rule-uses-result",
            "error",
            f"a scoring rule cannot test '{name}', which the rules compute",
            subject.span,
            "test scores and labels in classify or qualify",
        )
        return
    if ctx == "ladder" and kind == "ladder" and name == owner:
        yield make(
            src,
            "self-reference",
            "error",
            f"ladder '{name}' cannot use its own label",
            subject.span,
        )
        return
    if isinstance(node, A.Velocity):
        if kind != "model":
            yield make(
                src,
                "bad-velocity",
                "error",
                f"'gained' measures a score model, and '{name}' is not one",
                subject.span,
                _did_you_mean(name, scope.models),
            )
        return
    if kind == "attribute":
        yield from _check_attribute(node, name, subject.span, scope, src, known, attribute_types)
        return
    if kind == "model":
        if (
            isinstance(node, (A.TextTest, A.Presence))
            or (isinstance(node, A.Compare) and _type_of(node.value.value) != "number")
            or (
                isinstance(node, A.InList)
                and any(_type_of(v.value) != "number" for v in node.values)
            )
        ):
            yield make(
                src,
                "type-clash",
                "error",
                f"'{name}' is a score (a number); compare it with a number",
                node.span,
            )
        elif getattr(node, "exact", False):
            yield make(src, "exact-on-number", "error", "'exactly' applies to text", node.span)
        return
    # A ladder: equality with one of its labels.
    labels = scope.labels_of(name)
    values: list[A.Literal] = []
    if isinstance(node, A.Compare):
        if node.op not in ("=", "!="):
            yield make(
                src,
                "type-clash",
                "error",
                f"'{name}' is a label; compare it with '=', '!=', 'is' or 'in'",
                node.span,
            )
            return
        values = [node.value]
    elif isinstance(node, A.InList):
        values = list(node.values)
    elif isinstance(node, A.TextTest) and not labels:
        return  # a combined label (e.g. "A1") may be tested as text
    else:
        yield make(
            src,
            "type-clash",
            "error",
            f"'{name}' is a label; compare it with 'is' or 'in'",
            node.span,
        )
        return
    for lit in values:
        if not isinstance(lit.value, str):
            yield make(
                src,
                "type-clash",
                "error",
                f"'{name}' is a label; compare it with text like "
                f'"{labels[0] if labels else "A1"}"',
                lit.span,
            )
        elif (
            labels
            and lit.value not in labels
            and lit.value.casefold() not in {x.casefold() for x in labels}
        ):
            near = suggest(lit.value, labels)
            yield make(
                src,
                "unknown-label",
                "error",
                f"'{name}' has no label '{lit.value}' (its labels: {', '.join(labels)})",
                lit.span,
                f'did you mean "{near}"?' if near else None,
            )


def _check_attribute(
    node: A.Condition,
    name: str,
    span: A.Span,
    scope: Scope,
    src: Source,
    known: set[str],
    attribute_types: dict[str, tuple[str, A.Span]],
) -> Iterator[Diagnostic]:
    if scope.schema is not None and name not in scope.schema:
        near = suggest(name, set(scope.schema) | known)
        yield make(
            src,
            "unknown-name",
            "error",
            f"unknown attribute '{name}'",
            span,
            f"did you mean '{near}'?" if near else "declare it in the attributes block",
        )
        return
    if scope.schema is None:
        near = suggest(name, known | {"score"})
        if near:
            kind = (
                "name" if near == "score" else "score model" if near in scope.models else "ladder"
            )
            yield make(
                src,
                "unknown-name",
                "error",
                f"unknown {kind} '{name}'",
                span,
                f"did you mean '{near}'?",
            )
            return
    literals: list[A.Literal] = []
    if isinstance(node, A.Compare):
        literals = [node.value]
    elif isinstance(node, A.InList):
        literals = list(node.values)
    elif isinstance(node, A.TextTest):
        literals = [node.value]
    declared = scope.schema.get(name) if scope.schema else None
    if declared not in ATTRIBUTE_TYPES:
        declared = None  # a misspelt type is reported once, where it is declared
    if isinstance(node, A.TextTest) and declared in ("number", "boolean"):
        yield make(
            src,
            "type-clash",
            "error",
            f"attribute '{name}' is a {declared}; '{node.kind}' applies to text",
            node.span,
        )
        return
    for lit in literals:
        t = _type_of(lit.value)
        if getattr(node, "exact", False) and t != "text":
            yield make(src, "exact-on-number", "error", "'exactly' applies to text", node.span)
        if declared is not None:
            if t != declared:
                yield make(
                    src,
                    "type-clash",
                    "error",
                    f"attribute '{name}' is declared {declared}, compared with {t}",
                    lit.span,
                )
            continue
        if name in attribute_types and attribute_types[name][0] != t:
            first_t, first = attribute_types[name]
            yield make(
                src,
                "type-clash",
                "error",
                f"attribute '{name}' is compared with {first_t} on line {first.line} "
                f"and with {t} here",
                lit.span,
                "declare its type in an attributes block and compare consistently",
            )
        else:
            attribute_types.setdefault(name, (t, lit.span))


def _did_you_mean(word: str, names: object) -> str | None:
    near = suggest(word, names)  # type: ignore[arg-type]
    return f"did you mean '{near}'?" if near else None


# ---- ladders -------------------------------------------------------------------------------


def _threshold(cond: A.Condition | None) -> tuple[str, str, float] | None:
    """(subject, direction, value) of a plain `X >= n` / `X > n` (or <=, <) rung, else None."""
    if (
        isinstance(cond, A.Compare)
        and isinstance(cond.value.value, float)
        and not isinstance(cond.value.value, bool)
        and cond.op in ("<", "<=", ">", ">=")
    ):
        subject = "score" if isinstance(cond.subject, A.Total) else cond.subject.name
        return subject, cond.op, cond.value.value
    return None


def _implies(earlier: tuple[str, str, float], later: tuple[str, str, float]) -> bool:
    """Whether every value passing `later` also passes `earlier`: then `later` can never apply."""
    (s1, op1, v1), (s2, op2, v2) = earlier, later
    if s1 != s2 or op1[0] != op2[0]:
        return False
    if op1[0] == ">":
        return v2 > v1 or (v2 == v1 and (op1 == ">=" or op2 == ">"))
    return v2 < v1 or (v2 == v1 and (op1 == "<=" or op2 == "<"))


def check_ladders(script: A.Script, scope: Scope, src: Source) -> Iterator[Diagnostic]:
    for stmt in _contact_statements(script):
        if isinstance(stmt, A.Classify):
            yield from _check_ladder(stmt, src)
        elif isinstance(stmt, A.Combine):
            for part in stmt.parts:
                if (
                    isinstance(part, (A.LabelPart, A.RankPart))
                    and part.name not in scope.label_names
                ):
                    yield make(
                        src,
                        "unknown-name",
                        "error",
                        f"unknown ladder '{part.name}'",
                        part.span,
                        _did_you_mean(part.name, scope.label_names),
                    )
                elif isinstance(part, A.RankPart) and part.name not in scope.ladders:
                    yield make(
                        src,
                        "bad-rank",
                        "error",
                        f"'{part.name}' is a combined label; 'rank of' takes a ladder",
                        part.span,
                    )
                elif isinstance(part, (A.LabelPart, A.RankPart)) and part.name == stmt.name:
                    yield make(
                        src,
                        "self-reference",
                        "error",
                        f"'{stmt.name}' cannot be built from itself",
                        part.span,
                    )


def _check_ladder(ladder: A.Classify, src: Source) -> Iterator[Diagnostic]:
    rungs = ladder.rungs
    last = rungs[-1]
    if all(r.condition is not None for r in rungs):
        yield make(
            src,
            "no-otherwise",
            "error",
            f"ladder '{ladder.name}' must end with an 'otherwise' rung",
            last.span,
            "add a last line such as 'cold otherwise'",
        )
    labels: dict[str, A.Span] = {}
    for i, rung in enumerate(rungs):
        if rung.condition is None and i < len(rungs) - 1:
            yield make(
                src,
                "unreachable-rung",
                "error",
                "'otherwise' must be the last rung: the rungs after it never apply",
                rungs[i + 1].span,
                f"move '{rung.label} otherwise' to the end of the ladder",
            )
        if rung.label in labels:
            yield make(
                src,
                "duplicate-label",
                "warning",
                f"label '{rung.label}' already appears on line {labels[rung.label].line}",
                rung.span,
            )
        labels.setdefault(rung.label, rung.span)
        this = _threshold(rung.condition)
        for earlier in rungs[:i]:
            if earlier.condition is None:
                break
            if earlier.condition == rung.condition:
                yield make(
                    src,
                    "unreachable-rung",
                    "warning",
                    f"this rung never applies: line {earlier.span.line} has the same condition",
                    rung.span,
                )
                break
            prev = _threshold(earlier.condition)
            if this and prev and _implies(prev, this):
                yield make(
                    src,
                    "unreachable-rung",
                    "warning",
                    f"this rung never applies: every value it takes already stops at line "
                    f"{earlier.span.line}",
                    rung.span,
                    "order the rungs from the highest threshold down",
                )
                break


# ---- specificity, shadowing and duplicates --------------------------------------------------


def check_shadowing(script: A.Script, scope: Scope, src: Source) -> Iterator[Diagnostic]:
    additive_models = {
        s.name
        for s in script.statements
        if isinstance(s, A.ScoreBlock) and any(isinstance(i, A.ModelAdditive) for i in s.items)
    }
    if any(isinstance(s, A.ModelAdditive) for s in script.statements):
        additive_models.add(DEFAULT_MODEL)
    by_model: dict[str, list[tuple[A.Rule, tuple[str, str | None, str | None]]]] = {}
    condition_rules: dict[str, list[A.Rule]] = {}
    for model, rule in iter_rules(script):
        if _is_event_rule(rule) and len(rule.condition.words) <= 3:  # type: ignore[union-attr]
            pattern = scope.event_pattern(rule.condition)  # type: ignore[arg-type]
            by_model.setdefault(model, []).append((rule, pattern))
        else:
            condition_rules.setdefault(model, []).append(rule)
    for model, rules in by_model.items():
        for i, (rule, pat) in enumerate(rules):
            for other, opat in rules[:i]:
                if pat == opat:
                    yield make(
                        src,
                        "duplicate-rule",
                        "warning",
                        f"same event pattern as line {other.span.line}: both rules apply, "
                        "so these events count twice",
                        rule.span,
                        "merge them into one rule",
                    )
            if model in additive_models or any(isinstance(m, A.Additive) for m in rule.modifiers):
                continue
            for other, opat in rules:
                if other is rule or any(isinstance(m, A.Additive) for m in other.modifiers):
                    continue
                if _broader(opat, pat):
                    same = other.points == rule.points and other.modifiers == rule.modifiers
                    if same:
                        yield make(
                            src,
                            "redundant-rule",
                            "warning",
                            f"this rule changes nothing: line {other.span.line} gives the "
                            "same points to these events",
                            rule.span,
                        )
                    else:
                        yield make(
                            src,
                            "shadows",
                            "note",
                            f"for its events this rule replaces line {other.span.line} "
                            f"({_signed(other.points)}); the broader rule does not add up",
                            rule.span,
                            "add 'additive' to either rule if both should count",
                        )
    for crules in condition_rules.values():
        for i, rule in enumerate(crules):
            for other in crules[:i]:
                if other.condition == rule.condition:
                    yield make(
                        src,
                        "duplicate-rule",
                        "warning",
                        f"same condition as line {other.span.line}: both rules apply",
                        rule.span,
                        "merge them into one rule",
                    )


def _broader(a: tuple[str, str | None, str | None], b: tuple[str, str | None, str | None]) -> bool:
    """Whether pattern ``a`` matches every event ``b`` matches, and is less specific."""
    if a[0] != b[0] or a == b:
        return False
    obj_ok = a[1] is None or a[1] == b[1]
    name_ok = a[2] is None or a[2] == b[2]
    spec = (2 if a[2] else 0) + (1 if a[1] else 0) < (2 if b[2] else 0) + (1 if b[1] else 0)
    return obj_ok and name_ok and spec


def _signed(points: float) -> str:
    text = f"{points:+g}"
    return text


# ---- evaluation order ----------------------------------------------------------------------------


def label_dependencies(script: A.Script, scope: Scope) -> dict[str, set[str]]:
    """For ladders, combined labels and the two flags: the names each one uses."""
    deps: dict[str, set[str]] = {"disqualified": set(), "qualified": {"disqualified"}}

    def uses(cond: A.Condition | None) -> set[str]:
        out: set[str] = set()
        for node in walk_conditions(cond, into_where=False):
            if isinstance(node, A.QualifiedRef):
                out.add("qualified")
            elif isinstance(node, A.DisqualifiedRef):
                out.add("disqualified")
            for subject in _subjects(node):
                if isinstance(subject, A.Name) and scope.resolve(subject.name) == "ladder":
                    out.add(subject.name)
        return out

    for stmt in _contact_statements(script):
        match stmt:
            case A.Classify(name=name, rungs=rungs):
                deps.setdefault(name, set())
                for rung in rungs:
                    # Using its own label is reported by check_names, not as a cycle.
                    deps[name] |= uses(rung.condition) - {name}
            case A.Combine(name=name, parts=parts):
                deps.setdefault(name, set()).update(
                    p.name for p in parts if isinstance(p, (A.LabelPart, A.RankPart))
                )
            # The flags testing themselves are reported by check_names, not as cycles.
            case A.Qualify(condition=cond):
                deps["qualified"] |= uses(cond) - {"qualified"}
            case A.Disqualify(condition=cond):
                deps["disqualified"] |= uses(cond) - {"qualified", "disqualified"}
    return deps


def check_cycles(script: A.Script, scope: Scope, src: Source) -> Iterator[Diagnostic]:
    deps = label_dependencies(script, scope)
    try:
        tuple(graphlib.TopologicalSorter(deps).static_order())
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        where = next(
            (
                s
                for s in script.statements
                if isinstance(s, (A.Classify, A.Combine)) and s.name in cycle
            ),
            None,
        )
        span = where.name_span if where is not None else A.NO_SPAN
        yield make(
            src,
            "cycle",
            "error",
            "these definitions depend on each other: " + " -> ".join(cycle),
            span,
            "one of them must stop using the next",
        )


ROLLUP_MODES = ("sum", "max", "none")


def check_account(script: A.Script, scope: Scope, src: Source) -> Iterator[Diagnostic]:
    """What only an account block can get wrong; ``script`` is the block's own statements."""
    seen: dict[type, A.Span] = {}
    for stmt in script.statements:
        if isinstance(stmt, (A.Weight, A.Rollup)):
            if type(stmt) in seen:
                yield make(
                    src,
                    "duplicate-option",
                    "error",
                    f"the account block already has this on line {seen[type(stmt)].line}",
                    stmt.span,
                    "keep one" if isinstance(stmt, A.Rollup) else "list every role on one line",
                )
            seen.setdefault(type(stmt), stmt.span)
        items = stmt.items if isinstance(stmt, A.ScoreBlock) else (stmt,)
        for item in items:
            if isinstance(item, (A.Decay, A.Expire, A.ModelAdditive)):
                yield make(
                    src,
                    "account-option",
                    "error",
                    "account scores come from their contacts, whose models decay and expire; "
                    "this option has no meaning here",
                    item.span,
                    "put it in the contact score model that the account aggregates",
                )
        match stmt:
            case A.Weight(roles=roles):
                names: dict[str, str] = {}
                for role, weight in roles:
                    key = role.strip().casefold()  # as the evaluator compares roles
                    if key in names:
                        yield make(
                            src,
                            "duplicate-role",
                            "error",
                            f'role "{role}" already has a weight ("{names[key]}")',
                            stmt.span,
                        )
                    names.setdefault(key, role)
                    if weight < 0:
                        yield make(
                            src,
                            "bad-weight",
                            "error",
                            f'the weight of role "{role}" is negative',
                            stmt.span,
                            "use 0 to leave the role out of sums",
                        )
            case A.Rollup(mode=mode) if mode not in ROLLUP_MODES:
                yield make(
                    src,
                    "bad-rollup",
                    "error",
                    f"unknown rollup '{mode}'; use sum, max or none",
                    stmt.span,
                    _did_you_mean(mode, ROLLUP_MODES),
                )
            case A.AggregateScore(aggregate=agg):
                probe = A.AggregateTest(agg, ">=", A.Literal(0.0), stmt.span)
                yield from _check_members(probe, scope, src)


def _second_blocks(script: A.Script, src: Source) -> Iterator[Diagnostic]:
    blocks = [s for s in script.statements if isinstance(s, A.AccountBlock)]
    for block in blocks[1:]:
        yield make(
            src,
            "duplicate-account",
            "error",
            f"a script has one account block; the first is on line {blocks[0].span.line}",
            block.span,
            "move these lines into the first block",
        )


CHECKS: tuple[Check, ...] = (
    check_definitions,
    check_rules,
    check_events,
    check_names,
    check_ladders,
    check_shadowing,
    check_cycles,
)


def run_checks(script: A.Script, scope: Scope, src: Source) -> list[Diagnostic]:
    """Every diagnostic of every check, sorted by position.

    The account block is checked as a script of its own, with its own scope (account models,
    ladders and attributes) and the contacts' scope for its where clauses.
    """
    found = [d for check in CHECKS for d in check(script, scope, src)]
    found += _second_blocks(script, src)
    block = account_script(script)
    if block is not None:
        accounts = build_scope(block, members=scope)
        found += (d for check in (*CHECKS, check_account) for d in check(block, accounts, src))
    found.sort(key=lambda d: (d.span.start, d.code))
    return found
