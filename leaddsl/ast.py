"""The syntax tree of a rule script: frozen attrs nodes, each with a Span kept out of equality.

Two scripts that differ only in layout, comments or separators give equal trees, which is what
the formatter's round-trip test relies on. Nothing here knows about Lark.
"""

from __future__ import annotations

from typing import Union

import attrs

__all__ = [
    "Span",
    "NO_SPAN",
    "Duration",
    "Literal",
    "Name",
    "Total",
    "Compare",
    "InList",
    "TextTest",
    "Presence",
    "EventTest",
    "Velocity",
    "Inactive",
    "QualifiedRef",
    "DisqualifiedRef",
    "And",
    "Or",
    "Not",
    "Aggregate",
    "CountContacts",
    "CountRoles",
    "AggregateTest",
    "AnyContact",
    "AllContacts",
    "Limit",
    "Once",
    "OncePerName",
    "Within",
    "Additive",
    "Rule",
    "Decay",
    "Expire",
    "ModelAdditive",
    "ScoreBlock",
    "AggregateScore",
    "Qualify",
    "Disqualify",
    "Rung",
    "Classify",
    "LabelPart",
    "RankPart",
    "TextPart",
    "Combine",
    "AttributeDecl",
    "Attributes",
    "Objects",
    "Weight",
    "Rollup",
    "AccountBlock",
    "Script",
    "Condition",
    "Subject",
    "Statement",
]


@attrs.frozen
class Span:
    """Where a node sits in the source: 0-based offsets, 1-based line and column."""

    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int


NO_SPAN = Span(0, 0, 1, 1, 1, 1)


def _span() -> Span:
    return attrs.field(default=NO_SPAN, eq=False, repr=False)


UNIT_SECONDS = {
    "day": 86400.0,
    "days": 86400.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "week": 604800.0,
    "weeks": 604800.0,
}


@attrs.frozen
class Duration:
    amount: float
    unit: str
    span: Span = _span()

    @property
    def seconds(self) -> float:
        return self.amount * UNIT_SECONDS[self.unit]


@attrs.frozen
class Literal:
    value: str | float | bool
    span: Span = _span()


# ---- subjects ------------------------------------------------------------------


@attrs.frozen
class Name:
    """A bare name in a condition: an attribute, a score model or a ladder (resolved later)."""

    name: str
    span: Span = _span()


@attrs.frozen
class Total:
    """`score`: the sum of every model."""

    span: Span = _span()


Subject = Union[Name, Total]


# ---- conditions -----------------------------------------------------------------


@attrs.frozen
class Compare:
    subject: Subject
    op: str  # one of = != < <= > >=
    value: Literal
    exact: bool = False
    style: str = "op"  # "op" or "is": how it was written, for the formatter
    span: Span = _span()


@attrs.frozen
class InList:
    subject: Subject
    values: tuple[Literal, ...]
    negated: bool = False
    exact: bool = False
    span: Span = _span()


@attrs.frozen
class TextTest:
    subject: Subject
    kind: str  # contains | starts | ends
    value: Literal
    exact: bool = False
    span: Span = _span()


@attrs.frozen
class Presence:
    subject: Subject
    present: bool
    span: Span = _span()


@attrs.frozen
class EventTest:
    """An event pattern: the words as written, then `any` or a quoted name, count and window."""

    words: tuple[str, ...]
    name: str | None = None  # a quoted name
    any_name: bool = False
    at_least: float | None = None
    within: Duration | None = None
    span: Span = _span()


@attrs.frozen
class Velocity:
    subject: Subject
    within: Duration
    op: str
    value: Literal
    span: Span = _span()


@attrs.frozen
class Inactive:
    within: Duration
    span: Span = _span()


@attrs.frozen
class QualifiedRef:
    span: Span = _span()


@attrs.frozen
class DisqualifiedRef:
    span: Span = _span()


@attrs.frozen
class And:
    items: tuple[Condition, ...]
    span: Span = _span()


@attrs.frozen
class Or:
    items: tuple[Condition, ...]
    span: Span = _span()


@attrs.frozen
class Not:
    item: Condition
    span: Span = _span()


# ---- account aggregates -----------------------------------------------------------


@attrs.frozen
class Aggregate:
    """`sum|avg|max|min of [top N] contacts [where C] by MODEL`."""

    fn: str
    by: str
    top: float | None = None  # the checks require a whole number
    where: Condition | None = None
    span: Span = _span()


@attrs.frozen
class CountContacts:
    where: Condition | None = None
    span: Span = _span()


@attrs.frozen
class CountRoles:
    """`count of roles [where C]`: distinct committee roles among the contacts counted."""

    where: Condition | None = None
    span: Span = _span()


AggregateExpr = Union[Aggregate, CountContacts, CountRoles]


@attrs.frozen
class AggregateTest:
    aggregate: AggregateExpr
    op: str
    value: Literal
    span: Span = _span()


@attrs.frozen
class AnyContact:
    where: Condition | None
    qualified: bool = False  # `any contact [where C] is qualified`
    span: Span = _span()


@attrs.frozen
class AllContacts:
    where: Condition
    span: Span = _span()


Condition = Union[
    Compare,
    InList,
    TextTest,
    Presence,
    EventTest,
    Velocity,
    Inactive,
    QualifiedRef,
    DisqualifiedRef,
    And,
    Or,
    Not,
    AggregateTest,
    AnyContact,
    AllContacts,
]


# ---- rules and model options ------------------------------------------------------------


@attrs.frozen
class Limit:
    value: float
    span: Span = _span()


@attrs.frozen
class Once:
    span: Span = _span()


@attrs.frozen
class OncePerName:
    span: Span = _span()


@attrs.frozen
class Within:
    duration: Duration
    span: Span = _span()


@attrs.frozen
class Additive:
    span: Span = _span()


Modifier = Union[Limit, Once, OncePerName, Within, Additive]


@attrs.frozen
class Rule:
    condition: Condition
    points: float
    modifiers: tuple[Modifier, ...] = ()
    span: Span = _span()


@attrs.frozen
class Decay:
    half_life: Duration
    span: Span = _span()


@attrs.frozen
class Expire:
    after: Duration
    span: Span = _span()


@attrs.frozen
class ModelAdditive:
    span: Span = _span()


ModelItem = Union[Rule, Decay, Expire, ModelAdditive]


@attrs.frozen
class ScoreBlock:
    name: str
    items: tuple[ModelItem, ...]
    span: Span = _span()
    name_span: Span = _span()


@attrs.frozen
class AggregateScore:
    """`score NAME = AGGREGATE` inside an account block."""

    name: str
    aggregate: AggregateExpr
    span: Span = _span()


@attrs.frozen
class Qualify:
    condition: Condition
    span: Span = _span()


@attrs.frozen
class Disqualify:
    reason: str | None
    condition: Condition
    span: Span = _span()


@attrs.frozen
class Rung:
    label: str
    condition: Condition | None  # None: otherwise
    span: Span = _span()


@attrs.frozen
class Classify:
    name: str
    rungs: tuple[Rung, ...]
    span: Span = _span()
    name_span: Span = _span()


@attrs.frozen
class LabelPart:
    name: str
    span: Span = _span()


@attrs.frozen
class RankPart:
    name: str
    span: Span = _span()


@attrs.frozen
class TextPart:
    text: str
    span: Span = _span()


Part = Union[LabelPart, RankPart, TextPart]


@attrs.frozen
class Combine:
    """`classify NAME = part + part ...`: a label joined from other ladders, e.g. "A1"."""

    name: str
    parts: tuple[Part, ...]
    span: Span = _span()
    name_span: Span = _span()


@attrs.frozen
class AttributeDecl:
    name: str
    type: str
    span: Span = _span()
    type_span: Span = _span()


@attrs.frozen
class Attributes:
    decls: tuple[AttributeDecl, ...]
    span: Span = _span()


@attrs.frozen
class Objects:
    names: tuple[str, ...]
    span: Span = _span()


@attrs.frozen
class Weight:
    roles: tuple[tuple[str, float], ...]
    span: Span = _span()


@attrs.frozen
class Rollup:
    mode: str
    span: Span = _span()


Statement = Union[
    Rule,
    Decay,
    Expire,
    ModelAdditive,
    ScoreBlock,
    AggregateScore,
    Qualify,
    Disqualify,
    Classify,
    Combine,
    Attributes,
    Objects,
    Weight,
    Rollup,
    "AccountBlock",
]


@attrs.frozen
class AccountBlock:
    items: tuple[Statement, ...]
    span: Span = _span()


@attrs.frozen
class Script:
    statements: tuple[Statement, ...]
