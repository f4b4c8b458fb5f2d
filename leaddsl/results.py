"""Results of scoring: frozen records a host application can keep, compare and show."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from .ast import Span

if TYPE_CHECKING:
    from .ruleset import EvalState

__all__ = ["Contribution", "Check", "QualifyCheck", "ContactResult"]


@attrs.frozen
class Contribution:
    """The points one rule gave: the rows of ``explain()``, which add up to the total.

    ``raw`` is before decay, ``before_cap`` after decay, ``points`` after the cap too.
    ``events`` are the ids of the events the rule counted (empty for a condition rule).
    """

    model: str
    rule: str
    line: int
    points: float
    before_cap: float
    raw: float
    capped: bool
    events: tuple[str, ...]
    kind: str  # "event" | "condition" | "aggregate" (accounts)
    span: Span = attrs.field(eq=False, repr=False)
    # Account rows: the account the row belongs to (a subsidiary's rows say which), and the
    # contacts behind the points, each with its value (after its role's weight).
    account: str | None = None
    contacts: tuple[tuple[str, float], ...] = ()

    def describe(self) -> str:
        """One line for people: points, model, rule, and how decay and the cap shaped them."""
        text = f"{self.points:+8.2f}  {self.model:<12} line {self.line}: {self.rule}"
        if self.account is not None:
            text = f"{self.points:+8.2f}  {self.account:<10} {self.model:<12} line {self.line}: "
            text += self.rule
            if self.contacts:
                shown = ", ".join(f"{cid} {v:.4g}" for cid, v in self.contacts[:5])
                more = len(self.contacts) - 5
                text += f"  [{shown}{f', +{more} more' if more > 0 else ''}]"
            return text
        if self.kind == "event":
            n = len(self.events)
            text += f"  [{n} event{'s' if n != 1 else ''}, {self.raw:+g} before decay"
            if self.capped:
                text += f", {self.before_cap:+.2f} before the cap"
            text += "]"
        return text


@attrs.frozen
class Check:
    """One term of a qualify line and whether it holds."""

    text: str
    holds: bool


@attrs.frozen
class QualifyCheck:
    """A qualify line: whether it holds, and each of its `and` terms."""

    line: int
    text: str
    holds: bool
    conditions: tuple[Check, ...]

    @property
    def failing(self) -> tuple[Check, ...]:
        return tuple(c for c in self.conditions if not c.holds)


@attrs.frozen(hash=False)
class ContactResult:
    """A contact's scores at an as-of time. ``scores`` maps each model to its total."""

    id: str
    total: float
    scores: Mapping[str, float]
    labels: Mapping[str, str]
    qualified: bool
    disqualified: bool
    reasons: tuple[str, ...]
    as_of: datetime | None
    state: EvalState | None = attrs.field(default=None, eq=False, repr=False)
    # A live result is computed from a summary of the events; its explanation replays them.
    replay: Callable[[], ContactResult] | None = attrs.field(default=None, eq=False, repr=False)

    def explain(self) -> tuple[Contribution, ...]:
        """Every rule that gave points, in script order; their ``points`` add up to ``total``.

        Manual adjustments follow, each with its reason.
        """
        if self.replay is not None:
            return self.replay().explain()
        if self.state is None:
            return ()
        return self.state.ruleset.contributions(self.state)

    def missing(self) -> tuple[QualifyCheck, ...]:
        """For each qualify line: which of its terms hold and which fail."""
        if self.state is None:
            return ()
        return self.state.ruleset.qualify_checks(self.state)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: id, each model, total, labels, flags, as-of time."""
        return result_dict(self)


def result_dict(r: Any) -> dict[str, Any]:
    """The keys contact and account results share, as plain data."""
    return {
        "id": r.id,
        "total": r.total,
        "scores": dict(r.scores),
        "labels": dict(r.labels),
        "qualified": r.qualified,
        "disqualified": r.disqualified,
        "reasons": list(r.reasons),
        "as_of": None if r.as_of is None else r.as_of.isoformat(),
    }
