"""Filters written in the rule language: `band = "hot"`, `tier = "strategic" and score >= 100`.

A filter is a condition in the script's own terms, checked like any condition of the script
(unknown names, type clashes, with the caret under the filter text) and compiled by the same
compiler. For contacts it reads the contact's models, ladders and attributes; for accounts, the
account's, with its tests on contacts (`any contact where ...`).

A filter may test events the script never counts (`visited pricing within 7 days`): results
scored before it do not have those counts, so such a filter comes with its own Ruleset, the
script's plus the new counters, to score with (``Filter.rules``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from . import ast as A
from . import plan as P
from .checks import check_events, check_names
from .compiler import condition as compile_condition
from .diagnostics import Diagnostic, Source
from .errors import CheckError, LeadDSLError, ParseError
from .ruleset import Ruleset
from .scope import Scope, account_script, build_scope
from .syntax import parse

__all__ = ["Filter", "where"]

_PREFIX = "qualify when "  # a filter is parsed as the condition of a qualify line


@attrs.frozen
class Filter:
    """A compiled filter: ``rules`` to score with, and ``test(result)``."""

    text: str
    accounts: bool
    rules: Ruleset
    condition: P.Cond
    _pred: Callable[[Any], bool] = attrs.field(repr=False)

    def __call__(self, result: Any) -> bool:
        if result.state is None:
            raise LeadDSLError("this result has no evaluation state to test a filter on")
        return self._pred(result.state)


def _shift(d: Diagnostic, text: str, filename: str) -> Diagnostic:
    """A diagnostic of the wrapped line, moved onto the filter text the user wrote."""
    n = len(_PREFIX)
    span = d.span
    if span.line == 1 and span.column > n:
        span = attrs.evolve(
            span,
            column=span.column - n,
            end_column=max(span.end_column - n, span.column - n + 1),
            start=max(span.start - n, 0),
            end=max(span.end - n, 0),
        )
    else:
        span = attrs.evolve(span, line=1, column=1, end_line=1, end_column=2, start=0, end=1)
    return attrs.evolve(d, span=span, filename=filename, line_text=text)


def _scopes(rules: Ruleset) -> tuple[Scope, Scope | None]:
    script = parse(Source(rules.source, rules.plan.filename))
    scope = build_scope(script)
    block = account_script(script)
    return scope, None if block is None else build_scope(block, members=scope)


def where(rules: Ruleset, text: str, *, accounts: bool = False,
          filename: str = "<where>") -> Filter:
    """Compile ``text`` as a filter on the contacts (or the accounts) of ``rules``.

    Raises ScriptError (ParseError or CheckError) whose diagnostics point into ``text``.

    Example:
        >>> rules = compile("when visited pricing: +15\\nclassify band:\\n"
        ...                 "    hot when score >= 10\\n    cold otherwise")
        >>> hot = where(rules, 'band = "hot"')
        >>> hot(rules.score({"id": "c1"}, [{"action": "visited", "name": "pricing",
        ...                                  "at": "2026-03-01T00:00:00Z"}]))
        True
    """
    one = LeadDSLError('a filter is one condition on one line, e.g. band = "hot"')
    if not isinstance(text, str):
        raise one
    text = text.strip()
    if not text or "\n" in text:
        raise one
    wrapped = Source(_PREFIX + text, filename)
    try:
        parsed = parse(wrapped)
    except ParseError as exc:
        raise ParseError([_shift(d, text, filename) for d in exc.diagnostics]) from None
    if len(parsed.statements) != 1 or not isinstance(parsed.statements[0], A.Qualify):
        raise one  # e.g. a ';' that starts another statement
    stmt = parsed.statements[0]
    scope, account_scope = _scopes(rules)
    if accounts:
        if account_scope is None:
            raise LeadDSLError("the script has no account block, so accounts have no scores")
        scope = account_scope
    # Checked as a ladder rung: a filter may test qualification and labels.
    probe = A.Script((A.Classify("where", (A.Rung("yes", stmt.condition),
                                            A.Rung("no", None))),))
    found = [d for check in (check_names, check_events) for d in check(probe, scope, wrapped)]
    errors = [_shift(d, text, filename) for d in found if d.is_error]
    if errors:
        raise CheckError(errors)
    cond = compile_condition(stmt.condition, scope)
    target = rules if _counted(rules, cond, accounts) else Ruleset(
        rules.plan, rules.diagnostics, extra=(() if accounts else (cond,)),
        account_extra=((cond,) if accounts else ()))
    evaluator = target.accounts if accounts else target
    assert evaluator is not None
    return Filter(text, accounts, target, cond, evaluator._pred(cond))


def _counted(rules: Ruleset, cond: P.Cond, accounts: bool) -> bool:
    """Whether every event test of the filter is one the script's results already count."""
    keys = set(rules._counter_keys)
    stack: list[P.Cond | None] = [cond]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if isinstance(node, P.EventCount) and (node.action, node.object, node.name) not in keys:
            return False
        if isinstance(node, (P.AllOf, P.AnyOf)):
            stack.extend(node.items)
        elif isinstance(node, P.Negate):
            stack.append(node.item)
        elif isinstance(node, P.AggCmp):
            stack.append(node.aggregate.where)
        elif isinstance(node, (P.AnyMember, P.AllMembers)):
            stack.append(node.where)
    return True

