"""Rule changes reviewed on history: two scripts and a History in, what moves between them out.

Both scripts score the same records as of the latest event; the diff lists the contacts and
accounts whose labels, qualification or disqualification change, compares the distributions
of totals and of labels, and, when the history has outcomes, backtests both scripts (each
outcome scored as of just before it, or ``before`` seconds earlier) to compare precision,
recall and AUC — on every contact outcome, or only on the held-out split ``tune`` never fitted
on (``held_out`` and ``seed`` as given to ``tune``).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs

from .backtest import BEFORE, History, backtest
from .backtest import held_out as in_held_out
from .engine import Engine
from .errors import LeadDSLError
from .records import Rejected
from .report import Quality, quality
from .ruleset import Ruleset
from .stats import auc

__all__ = ["Move", "Spread", "Side", "RuleDiff", "diff"]

SHOWN = 15  # moves listed per kind in the text form; JSON has them all


@attrs.frozen
class Move:
    """One contact or account whose ``what`` (a ladder, qualified, disqualified) changed."""

    subject: str
    id: str
    what: str
    before: str
    after: str
    total_before: float
    total_after: float


@attrs.frozen
class Spread:
    """The distribution of totals: quartiles, the 90th percentile, mean, and label counts."""

    count: int
    mean: float
    minimum: float
    p25: float
    median: float
    p75: float
    p90: float
    maximum: float
    qualified: int
    labels: dict[str, dict[str, int]]


@attrs.frozen
class Side:
    """One script on the outcomes (contacts; accounts when outcomes name them).

    ``contacts`` and ``accounts`` count the decided outcomes measured.
    """

    auc: float | None
    qualification: Quality
    account_auc: float | None = None
    account_qualification: Quality | None = None
    contacts: int = 0
    accounts: int = 0


@attrs.frozen
class RuleDiff:
    """What moves between two scripts; ``rejected`` the records either script set aside."""

    moves: tuple[Move, ...]
    contacts: tuple[Spread, Spread]
    accounts: tuple[Spread, Spread] | None
    outcomes: tuple[Side, Side] | None
    rejected: tuple[Rejected, ...] = ()
    before: float = BEFORE  # seconds before each outcome its subject was scored
    held_out: float | None = None  # contact outcomes measured: only this held-out share
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, filter=lambda a, _: a.name != "rejected")
        data["rejected"] = [{"source": r.source, "reason": r.reason} for r in self.rejected]
        return data

    def render(self) -> str:
        out: list[str] = []
        for name, pair in (("contacts", self.contacts), ("accounts", self.accounts)):
            if pair is None:
                continue
            old, new = pair
            out.append(f"{name}: {old.count}")
            out.append("  total     mean    p25     median  p75     p90     max     qualified")
            for tag, s in (("before", old), ("after", new)):
                out.append(
                    f"  {tag:<8}  {s.mean:<7.1f} {s.p25:<7.1f} {s.median:<7.1f} {s.p75:<7.1f} "
                    f"{s.p90:<7.1f} {s.maximum:<7.1f} {s.qualified}"
                )
            for ladder in sorted(set(old.labels) | set(new.labels)):
                a, b = old.labels.get(ladder, {}), new.labels.get(ladder, {})
                counts = ", ".join(
                    f"{v} {a.get(v, 0)}→{b.get(v, 0)}" for v in sorted(set(a) | set(b))
                )
                out.append(f"  {ladder}: {counts}")
        kinds = Counter((m.subject, m.what) for m in self.moves)
        for (subject, what), n in sorted(kinds.items()):
            out.append(f"\n{n} {subject}{'s' if n != 1 else ''} change {what}:")
            shown = [m for m in self.moves if (m.subject, m.what) == (subject, what)]
            for m in shown[:SHOWN]:
                out.append(
                    f"  {m.id:<10} {m.before} → {m.after}  "
                    f"({m.total_before:.1f} → {m.total_after:.1f})"
                )
            if len(shown) > SHOWN:
                out.append(f"  ... and {len(shown) - SHOWN} more")
        if not self.moves:
            out.append("\nno contact or account changes label, qualification or disqualification")
        if self.outcomes is not None:
            when = (
                "just before it"
                if self.before <= BEFORE
                else f"{self.before / 86_400:g} days before it"
            )
            old_side = self.outcomes[0]
            whose = f"{old_side.contacts} contacts"
            if self.held_out is not None:
                whose += f" held out (share {self.held_out:g}, seed {self.seed})"
            if old_side.account_qualification is not None:
                whose += f", {old_side.accounts} accounts"
            out.append(f"\non the outcomes of {whose}, each scored as of {when}:")
            for tag, side in zip(("before", "after"), self.outcomes, strict=True):
                out.append(f"  {tag:<7} " + _side(side.auc, side.qualification, "contacts"))
                if side.account_qualification is not None:
                    out.append(
                        "          "
                        + _side(side.account_auc, side.account_qualification, "accounts")
                    )
        return "\n".join(out) + "\n"


def _side(value: float | None, q: Quality, what: str) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    return (
        f"{what}: AUC {'-' if value is None else f'{value:.3f}'}, qualified precision "
        f"{pct(q.precision)}, recall {pct(q.recall)}"
    )


def diff(
    old: Ruleset,
    new: Ruleset,
    history: History,
    *,
    before: float = BEFORE,
    held_out: float | None = None,
    seed: int = 0,
) -> RuleDiff:
    """Re-score ``history`` under both scripts and show what changes.

    Args:
        before: score each outcome this many seconds before it (default: just before).
        held_out, seed: measure the contact outcomes of this held-out split only, the one
            ``tune`` with the same share and seed never fitted on (account outcomes, which
            ``tune`` does not fit, are all measured). None measures every contact outcome.

    Example:
        >>> import leaddsl
        >>> h = History(contacts=[{"id": "c1"}], events=[{"contact": "c1", "action": "opened",
        ...     "object": "email", "at": "2026-03-01T00:00:00Z"}])
        >>> d = diff(leaddsl.compile("when opened email: +1; qualify when score >= 1"),
        ...          leaddsl.compile("when opened email: +0; qualify when score >= 1"), h)
        >>> [(m.id, m.what, m.before, m.after) for m in d.moves]
        [('c1', 'qualified', 'yes', 'no')]
    """
    if held_out is not None and not 0 < held_out < 1:
        raise LeadDSLError(f"held_out must be between 0 and 1, got {held_out!r}")
    old_engine, old_rejected = loaded_old = history.engine(old)
    new_engine, new_rejected = loaded_new = history.engine(new)
    # A record valid under one script may not be under the other (a number it compares).
    rejected = old_rejected + tuple(r for r in new_rejected if r not in old_rejected)
    c_before, c_after = old_engine.contacts(), new_engine.contacts()
    moves = _moves("contact", c_before, c_after)
    spreads = (_spread(c_before), _spread(c_after))
    account_spreads = None
    if old.accounts is not None and new.accounts is not None:
        a_before, a_after = old_engine.accounts(), new_engine.accounts()
        moves += _moves("account", a_before, a_after)
        account_spreads = (_spread(a_before), _spread(a_after))
    sides = None
    if len(history.outcomes):
        (old_side, old_out), (new_side, new_out) = (
            _outcomes(rules, history, loaded, before, held_out, seed)
            for rules, loaded in ((old, loaded_old), (new, loaded_new))
        )
        sides = (old_side, new_side)
        rejected += tuple(r for r in old_out + new_out if r not in rejected)
    return RuleDiff(
        tuple(moves), spreads, account_spreads, sides, rejected, before, held_out, seed
    )


def _moves(subject: str, before: Sequence[Any], after: Sequence[Any]) -> list[Move]:
    out = []
    new_by_id = {r.id: r for r in after}
    for a in before:
        b = new_by_id.get(a.id)
        if b is None:
            continue
        changes = [
            (name, a.labels[name], b.labels[name])
            for name in a.labels
            if name in b.labels and a.labels[name] != b.labels[name]
        ]
        if a.qualified != b.qualified:
            changes.append(("qualified", _yes(a.qualified), _yes(b.qualified)))
        if a.reasons != b.reasons:
            changes.append(
                ("disqualified", ", ".join(a.reasons) or "no", ", ".join(b.reasons) or "no")
            )
        out += [Move(subject, a.id, w, x, y, a.total, b.total) for w, x, y in changes]
    return out


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _spread(results: Sequence[Any]) -> Spread:
    totals = sorted(r.total for r in results)
    if not totals:
        return Spread(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, {})
    q = statistics.quantiles(totals, n=20, method="inclusive") if len(totals) > 1 else totals * 19
    labels: dict[str, Counter[str]] = {}
    for r in results:
        for name, value in r.labels.items():
            labels.setdefault(name, Counter())[value] += 1
    return Spread(
        len(totals),
        statistics.fmean(totals),
        totals[0],
        q[4],
        q[9],
        q[14],
        q[17],
        totals[-1],
        sum(1 for r in results if r.qualified),
        {k: dict(sorted(v.items())) for k, v in labels.items()},
    )


def _outcomes(
    rules: Ruleset,
    history: History,
    loaded: tuple[Engine, tuple[Rejected, ...]],
    before: float,
    held_out: float | None,
    seed: int,
) -> tuple[Side, tuple[Rejected, ...]]:
    run = backtest(rules, history, before=before, loaded=loaded)
    contacts = run.of("contact")
    if held_out is not None:
        contacts = [c for c in contacts if in_held_out(c.outcome.id, held_out, seed)]
    accounts = run.of("account")
    side = Side(
        auc([c.result.total for c in contacts], [c.outcome.won for c in contacts]),
        quality(contacts),
        auc([c.result.total for c in accounts], [c.outcome.won for c in accounts])
        if accounts
        else None,
        quality(accounts) if accounts else None,
        len(contacts),
        len(accounts),
    )
    return side, run.rejected
