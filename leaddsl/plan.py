"""The plan: a checked script compiled to plain, inspectable data (no closures, no Lark).

Every backend is built from a Plan: the fast Python evaluator (ruleset.py), the reference
evaluator (reference.py), and SQL backends later. Names are resolved (an attribute, a model or a
ladder), event patterns are split into action/object/name, durations are in seconds.
"""

from __future__ import annotations

from typing import Union

import attrs

from .ast import NO_SPAN, Span

__all__ = [
    "Attr",
    "ModelScore",
    "TotalScore",
    "LabelOf",
    "Subject",
    "Cmp",
    "In",
    "Text",
    "Present",
    "EventCount",
    "Gained",
    "Inactive",
    "IsQualified",
    "IsDisqualified",
    "AllOf",
    "AnyOf",
    "Negate",
    "Cond",
    "Agg",
    "CountOf",
    "RolesCount",
    "AggCmp",
    "AnyMember",
    "AllMembers",
    "EventRule",
    "ConditionRule",
    "Model",
    "Rung",
    "Ladder",
    "Combined",
    "QualifyLine",
    "DisqualifyLine",
    "AggregateRule",
    "AccountPlan",
    "Plan",
    "specificity",
]


def _span() -> Span:
    return attrs.field(default=NO_SPAN, eq=False, repr=False)


# ---- subjects -------------------------------------------------------------------


@attrs.frozen
class Attr:
    name: str


@attrs.frozen
class ModelScore:
    name: str


@attrs.frozen
class TotalScore:
    pass


@attrs.frozen
class LabelOf:
    name: str


Subject = Union[Attr, ModelScore, TotalScore, LabelOf]


# ---- conditions -----------------------------------------------------------------


@attrs.frozen
class Cmp:
    subject: Subject
    op: str
    value: str | float | bool
    exact: bool = False


@attrs.frozen
class In:
    subject: Subject
    values: tuple[str | float | bool, ...]
    negated: bool = False
    exact: bool = False


@attrs.frozen
class Text:
    subject: Subject
    kind: str  # contains | starts | ends
    value: str
    exact: bool = False


@attrs.frozen
class Present:
    subject: Subject
    present: bool


@attrs.frozen
class EventCount:
    """At least ``at_least`` events with this action (and object, and name) in the window."""

    action: str
    object: str | None
    name: str | None
    at_least: int = 1
    window: float | None = None  # seconds


@attrs.frozen
class Gained:
    """Points a model (None: every model) gained from events of the last ``window`` seconds."""

    model: str | None
    window: float
    op: str
    value: float


@attrs.frozen
class Inactive:
    window: float


@attrs.frozen
class IsQualified:
    pass


@attrs.frozen
class IsDisqualified:
    pass


@attrs.frozen
class AllOf:
    items: tuple[Cond, ...]


@attrs.frozen
class AnyOf:
    items: tuple[Cond, ...]


@attrs.frozen
class Negate:
    item: Cond


# Account aggregates over eligible member contacts (the accounts issue compiles these).
@attrs.frozen
class Agg:
    fn: str
    by: str  # a contact model name, or "score"
    top: int | None = None
    where: Cond | None = None


@attrs.frozen
class CountOf:
    where: Cond | None = None


@attrs.frozen
class RolesCount:
    where: Cond | None = None


@attrs.frozen
class AggCmp:
    aggregate: Agg | CountOf | RolesCount
    op: str
    value: float


@attrs.frozen
class AnyMember:
    where: Cond | None
    qualified: bool = False


@attrs.frozen
class AllMembers:
    where: Cond


Cond = Union[
    Cmp,
    In,
    Text,
    Present,
    EventCount,
    Gained,
    Inactive,
    IsQualified,
    IsDisqualified,
    AllOf,
    AnyOf,
    Negate,
    AggCmp,
    AnyMember,
    AllMembers,
]


# ---- rules, models, ladders ----------------------------------------------------------


def specificity(object_: str | None, name: str | None) -> int:
    """Rank of an event pattern: a name counts more than an object kind, both more than neither."""
    return (2 if name is not None else 0) + (1 if object_ is not None else 0)


@attrs.frozen
class EventRule:
    """A rule scored per matching event."""

    index: int  # position among the plan's rules, for explain() order
    model: str
    action: str
    object: str | None
    name: str | None
    points: float
    limit: float | None = None
    once: bool = False
    per_name: bool = False
    window: float | None = None  # seconds
    additive: bool = False
    text: str = ""
    span: Span = _span()

    @property
    def specificity(self) -> int:
        return specificity(self.object, self.name)

    def matches(self, action: str, object_: str | None, name: str | None) -> bool:
        return (
            self.action == action
            and (self.object is None or self.object == object_)
            and (self.name is None or self.name == name)
        )


@attrs.frozen
class ConditionRule:
    """A rule on the contact as a whole (fit, or an event test such as `at least 3 times`)."""

    index: int
    model: str
    condition: Cond
    points: float
    text: str = ""
    span: Span = _span()


@attrs.frozen
class Model:
    name: str
    half_life: float | None = None  # seconds
    expire: float | None = None  # seconds
    additive: bool = False


@attrs.frozen
class Rung:
    label: str
    condition: Cond | None  # None: otherwise
    text: str = ""


@attrs.frozen
class Ladder:
    name: str
    rungs: tuple[Rung, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(r.label for r in self.rungs)


@attrs.frozen
class Combined:
    """A label joined from parts: ("label", ladder), ("rank", ladder) or ("text", literal)."""

    name: str
    parts: tuple[tuple[str, str], ...]


@attrs.frozen
class QualifyLine:
    condition: Cond
    text: str
    line: int
    # The top-level `and` terms, each with its source text: what missing() reports.
    parts: tuple[tuple[str, Cond], ...]


@attrs.frozen
class DisqualifyLine:
    reason: str
    condition: Cond
    text: str
    line: int


Step = Union[Ladder, Combined, str]  # str: "disqualified" or "qualified"


@attrs.frozen
class AggregateRule:
    """`score NAME = AGGREGATE`: an account model whose value is an aggregate of its contacts."""

    model: str
    aggregate: Agg | CountOf | RolesCount
    text: str = ""
    span: Span = _span()


@attrs.frozen
class AccountPlan:
    """The account block: a plan of its own over account attributes and member aggregates.

    ``plan`` holds the block's models, rules, ladders and flags; its where clauses are contact
    conditions. ``weights`` maps committee roles (as written) to multipliers; ``rollup`` is
    how parents take in subsidiaries: "sum", "max" or "none".
    """

    plan: Plan
    weights: tuple[tuple[str, float], ...] = ()
    rollup: str = "none"


@attrs.frozen
class Plan:
    models: tuple[Model, ...]
    event_rules: tuple[EventRule, ...]
    condition_rules: tuple[ConditionRule, ...]
    disqualify: tuple[DisqualifyLine, ...]
    qualify: tuple[QualifyLine, ...]
    # Ladders, combined labels and the two flags, in an order where each comes after what it uses.
    steps: tuple[Step, ...]
    # Attributes compared with numbers (records must hold numbers there) and declared types.
    numeric_attributes: frozenset[str] = frozenset()
    schema: tuple[tuple[str, str], ...] = ()
    aggregates: tuple[AggregateRule, ...] = ()  # account plans only
    account: AccountPlan | None = None
    source: str = ""
    filename: str = "<script>"

    @property
    def ladders(self) -> tuple[Ladder, ...]:
        return tuple(s for s in self.steps if isinstance(s, Ladder))

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps if isinstance(s, (Ladder, Combined)))
