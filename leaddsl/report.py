"""Outcome reports: a Backtest in, conversion by segment, per-rule lift and flags out.

Definitions (docs/closed-loop.md states them for readers):

- conversion rate: won / (won + lost); open outcomes are counted but never in a rate;
- 95% interval: Wilson score interval (leaddsl.stats.wilson);
- lift: a segment's conversion rate divided by the base rate (all decided cases);
- a rule *fired* for a case when it gave the case non-zero points as of the case's time;
- calibration: P(won) from the total score by a logistic fit, each case predicted by a fit on
  the other folds (leaddsl.stats.cross_fitted), against the observed rate, in bins of cases
  ordered by score.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from .backtest import Backtest, Case
from .stats import auc, cross_fitted, wilson

__all__ = ["Rate", "RuleStat", "Quality", "Bin", "Report", "OutcomeReport", "report", "quality"]

MIN_CASES = 10  # a rule fired for fewer decided cases is never flagged: too little evidence
CALIBRATION_CASES = 50  # fewer decided cases (or one class only): no calibration curve


@attrs.frozen
class Rate:
    """Conversion of one segment (``dimension`` = ``value``), with its interval and lift."""

    dimension: str
    value: str
    cases: int  # decided: won + lost
    won: int
    open: int
    rate: float | None
    low: float
    high: float
    lift: float | None
    value_won: float = 0.0  # the outcomes' ``value`` summed over the won cases

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class RuleStat:
    """How one rule did: who it fired for, how they converted, and the points it gave."""

    model: str
    line: int
    rule: str
    points: float | None  # the rule's points per hit (None for an account aggregate)
    fired_won: int
    fired_lost: int
    share_won: float  # of all won cases, the share it fired for
    share_lost: float
    rate: Rate  # conversion of the cases it fired for
    mean_points: float  # mean points it gave the cases it fired for
    flag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["rate"] = self.rate.to_dict()
        return data


@attrs.frozen
class Quality:
    """How well ``qualified`` picked the winners: a confusion table, precision and recall."""

    qualified_won: int
    qualified_lost: int
    missed_won: int  # won but not qualified
    rejected_lost: int  # lost and not qualified
    precision: float | None
    recall: float | None
    precision_interval: tuple[float, float]
    recall_interval: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Bin:
    """One point of the calibration curve: cases with scores alike.

    ``predicted`` is their mean predicted probability, ``observed`` the share of them won
    (with its Wilson interval); scores ``score_low`` to ``score_high`` fall in the bin.
    """

    cases: int
    won: int
    predicted: float
    observed: float
    low: float
    high: float
    score_low: float
    score_high: float

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def quality(cases: Sequence[Case]) -> Quality:
    """Precision and recall of ``qualified`` over decided cases (each as of its outcome)."""
    tp = sum(1 for c in cases if c.result.qualified and c.outcome.won)
    fp = sum(1 for c in cases if c.result.qualified and not c.outcome.won)
    fn = sum(1 for c in cases if not c.result.qualified and c.outcome.won)
    tn = len(cases) - tp - fp - fn
    return Quality(
        tp,
        fp,
        fn,
        tn,
        tp / (tp + fp) if tp + fp else None,
        tp / (tp + fn) if tp + fn else None,
        wilson(tp, tp + fp),
        wilson(tp, tp + fn),
    )


@attrs.frozen
class Report:
    """The report for one kind of subject (contacts or accounts)."""

    subject: str
    won: int
    lost: int
    open: int
    base_rate: float | None
    auc: float | None  # of the total score: the chance a winner outranks a loser
    segments: tuple[Rate, ...]
    rules: tuple[RuleStat, ...]
    qualification: Quality
    by_score: tuple[Rate, ...]  # conversion by score quintile, lowest first
    # The calibration curve of P(won) given the score, and its mean absolute gap |predicted -
    # observed| weighted by cases (None when too few cases for one).
    calibration: tuple[Bin, ...] = ()
    calibration_error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "won": self.won,
            "lost": self.lost,
            "open": self.open,
            "base_rate": self.base_rate,
            "auc": self.auc,
            "segments": [s.to_dict() for s in self.segments],
            "rules": [r.to_dict() for r in self.rules],
            "qualification": self.qualification.to_dict(),
            "by_score": [s.to_dict() for s in self.by_score],
            "calibration": [b.to_dict() for b in self.calibration],
            "calibration_error": self.calibration_error,
        }

    def render(self) -> str:
        """The report as text tables for a terminal."""
        out = [
            f"{self.subject}s: {self.won} won, {self.lost} lost, {self.open} open; "
            f"base rate {_pct(self.base_rate)}; AUC of the score {_num(self.auc, 3)}",
            "",
            "conversion by segment (95% Wilson interval; lift = rate / base rate)",
        ]
        money = any(s.value_won for s in self.segments)
        head = ["segment", "value", "won", "cases", "rate", "interval", "lift"]
        head += ["won value"] if money else []
        out.append(_table(head, [_rate_row(s.dimension, s, money) for s in self.segments]))
        out.append("\nconversion by score quintile")
        out.append(_table(head, [_rate_row("score", s, money) for s in self.by_score]))
        if self.calibration:
            out.append(
                "\ncalibration: P(won) from the score (logistic fit, each case predicted by a fit "
                "on the other folds)\nagainst the share won; mean gap "
                f"{_pct(self.calibration_error)}"
            )
            rows = [
                [f"{b.score_low:.1f} to {b.score_high:.1f}", str(b.cases), _pct(b.predicted),
                 _pct(b.observed), _interval((b.low, b.high))]
                for b in self.calibration
            ]
            out.append(_table(["score", "cases", "predicted", "observed", "interval"], rows))
        out.append("\nrules: fired among won and lost, conversion when fired, lift, points")
        rows = [
            [
                str(r.line),
                r.model,
                _clip(r.rule),
                f"{r.share_won:.0%}",
                f"{r.share_lost:.0%}",
                _pct(r.rate.rate),
                _num(r.rate.lift, 2),
                _num(r.points, 3),
                f"{r.mean_points:.1f}",
                r.flag or "",
            ]
            for r in self.rules
        ]
        out.append(_table(["line", "model", "rule", "won", "lost", "rate", "lift", "points",
                           "mean", "flag"], rows))
        q = self.qualification
        out.append(
            f"\nqualified: precision {_pct(q.precision)} {_interval(q.precision_interval)}, "
            f"recall {_pct(q.recall)} {_interval(q.recall_interval)} "
            f"({q.qualified_won} qualified won, {q.qualified_lost} qualified lost, "
            f"{q.missed_won} won not qualified, {q.rejected_lost} lost not qualified)"
        )
        return "\n".join(out) + "\n"


@attrs.frozen
class OutcomeReport:
    """Reports on contact outcomes and on account outcomes (None where there are none)."""

    contacts: Report | None
    accounts: Report | None
    rejected: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "contacts": None if self.contacts is None else self.contacts.to_dict(),
            "accounts": None if self.accounts is None else self.accounts.to_dict(),
            "rejected": self.rejected,
        }

    def render(self) -> str:
        parts = [r.render() for r in (self.contacts, self.accounts) if r is not None]
        return "\n".join(parts) if parts else "no outcomes to report on\n"


def report(run: Backtest) -> OutcomeReport:
    """Conversion by segment, per-rule lift and flags, qualification quality.

    Example:
        >>> import leaddsl
        >>> from leaddsl.backtest import History
        >>> h = History(contacts=[{"id": "c1"}, {"id": "c2"}],
        ...     events=[{"contact": "c1", "action": "visited", "object": "page",
        ...              "name": "pricing", "at": "2026-03-01T00:00:00Z"}],
        ...     outcomes=[{"contact": "c1", "outcome": "won", "at": "2026-04-01"},
        ...               {"contact": "c2", "outcome": "lost", "at": "2026-04-01"}])
        >>> r = report(h.backtest(leaddsl.compile("when visited page any: +10")))
        >>> r.contacts.rules[0].rate.lift
        2.0
    """
    made = {s: _subject_report(run, s) for s in ("contact", "account")}
    return OutcomeReport(made["contact"], made["account"], len(run.rejected))


def _subject_report(run: Backtest, subject: str) -> Report | None:
    everything = run.of(subject, decided=False)
    if not everything:
        return None
    cases = [c for c in everything if c.outcome.decided]
    won = sum(1 for c in cases if c.outcome.won)
    base = won / len(cases) if cases else None
    segments: list[Rate] = []
    ladders = list(cases[0].result.labels) if cases else []
    for name in ladders:
        segments += _segment(name, everything, base, functools.partial(_label, name))
    segments += _segment("qualified", everything, base,
                         lambda c: ["yes" if c.result.qualified else "no"])
    if any(c.result.disqualified for c in everything):
        segments += _segment("disqualified", everything, base,
                             lambda c: list(c.result.reasons) or ["no"])
    segments += _segment(
        "channel", everything, base, lambda c: list(c.channels) or ["(no event points)"]
    )
    return Report(
        subject,
        won,
        len(cases) - won,
        len(everything) - len(cases),
        base,
        auc([c.result.total for c in cases], [c.outcome.won for c in cases]),
        tuple(segments),
        _rule_stats(run, cases, base),
        quality(cases),
        _quintiles(cases, base),
        *_calibration(cases),
    )


def _label(name: str, case: Case) -> list[str | None]:
    return [case.result.labels.get(name)]


def _rate(dimension: str, value: str, won: int, cases: int, open_: int,
          base: float | None, value_won: float = 0.0) -> Rate:
    rate = won / cases if cases else None
    lift = rate / base if rate is not None and base else None
    low, high = wilson(won, cases)
    return Rate(dimension, value, cases, won, open_, rate, low, high, lift, value_won)


def _segment(
    dimension: str,
    cases: Iterable[Case],
    base: float | None,
    values: Callable[[Case], list[str | None]],
) -> list[Rate]:
    """One Rate per value; a case may count under several values (channels)."""
    tally: dict[str, list[float]] = {}
    for c in cases:
        for v in values(c):
            t = tally.setdefault(str(v), [0, 0, 0, 0.0])
            if not c.outcome.decided:
                t[2] += 1
            else:
                t[0] += c.outcome.won
                t[1] += 1
                if c.outcome.won:
                    t[3] += c.outcome.value or 0.0
    return [
        _rate(dimension, v, int(w), int(n), int(o), base, m)
        for v, (w, n, o, m) in sorted(tally.items())
    ]


def _quintiles(cases: Sequence[Case], base: float | None) -> tuple[Rate, ...]:
    """Five score bins holding about as many cases each (ties stay together)."""
    ordered = sorted(cases, key=lambda c: c.result.total)
    if not ordered:
        return ()
    out = []
    n = len(ordered)
    start = 0
    for k in range(1, 6):
        end = round(n * k / 5)
        while 0 < end < n and ordered[end].result.total == ordered[end - 1].result.total:
            end += 1
        chunk = ordered[start:end]
        if chunk:
            lo, hi = chunk[0].result.total, chunk[-1].result.total
            won = sum(1 for c in chunk if c.outcome.won)
            value = sum(c.outcome.value or 0.0 for c in chunk if c.outcome.won)
            out.append(_rate("score", f"{lo:.1f} to {hi:.1f}", won, len(chunk), 0, base, value))
        start = max(start, end)
    return tuple(out)


def _calibration(cases: Sequence[Case]) -> tuple[tuple[Bin, ...], float | None]:
    """The calibration curve: ten bins (five under 200 cases) of cases by score."""
    won = [c.outcome.won for c in cases]
    if len(cases) < CALIBRATION_CASES or all(won) or not any(won):
        return (), None
    scores = [c.result.total for c in cases]
    predicted = cross_fitted(scores, won)
    # Binned by score, not by prediction: each fold's fit maps a score a little differently,
    # and bins of scores do not overlap (the fit is monotone in the score).
    order = sorted(range(len(cases)), key=lambda i: scores[i])
    n, count = len(order), 10 if len(order) >= 200 else 5
    bins, start = [], 0
    for k in range(1, count + 1):
        end = round(n * k / count)
        while 0 < end < n and scores[order[end]] == scores[order[end - 1]]:
            end += 1  # equal scores stay together
        chunk = order[start:end]
        if chunk:
            w = sum(1 for i in chunk if won[i])
            low, high = wilson(w, len(chunk))
            bins.append(Bin(len(chunk), w, statistics.fmean(predicted[i] for i in chunk),
                            w / len(chunk), low, high, min(scores[i] for i in chunk),
                            max(scores[i] for i in chunk)))
        start = max(start, end)
    gap = sum(b.cases * abs(b.predicted - b.observed) for b in bins) / n
    return tuple(bins), gap


def _rule_stats(run: Backtest, cases: Sequence[Case], base: float | None) -> tuple[RuleStat, ...]:
    """One RuleStat per rule that fired for a decided case, or that the plan lists."""
    key_t = tuple[int, str, str]
    per_point: dict[key_t, float | None] = {}
    if cases and cases[0].outcome.subject == "contact":
        for r in run.rules.plan.event_rules:
            per_point[(r.span.line, r.model, r.text)] = r.points
        for c in run.rules.plan.condition_rules:
            per_point[(c.span.line, c.model, c.text)] = c.points
    fired: dict[key_t, list[tuple[bool, float]]] = {k: [] for k in per_point}
    for case in cases:
        for row in case.result.explain():
            if row.kind == "adjustment" or row.points == 0:
                continue
            key = (row.line, row.model, row.rule)
            fired.setdefault(key, []).append((case.outcome.won, row.points))
            if key not in per_point:
                per_point[key] = row.raw if row.kind == "condition" else None
    won_total = sum(1 for c in cases if c.outcome.won)
    lost_total = len(cases) - won_total
    stats = []
    for key in sorted(fired):
        hits = fired[key]
        w = sum(1 for y, _ in hits if y)
        rate = _rate("rule", key[2], w, len(hits), 0, base)
        stats.append(
            RuleStat(
                key[1],
                key[0],
                key[2],
                per_point[key],
                w,
                len(hits) - w,
                w / won_total if won_total else 0.0,
                (len(hits) - w) / lost_total if lost_total else 0.0,
                rate,
                statistics.fmean(p for _, p in hits) if hits else 0.0,
            )
        )
    return tuple(_flag(stats, base, won_total, lost_total))


def _flag(stats: list[RuleStat], base: float | None, won: int, lost: int) -> list[RuleStat]:
    """Flag rules whose points disagree with what they predict.

    - ``overrated``: gives points, yet the cases it fires for convert no better than average
      (lift below 1.1) — the loyal-reader trap;
    - no flag for a rule that fires for every case (its lift is 1 by construction) or whose
      points are not per hit (account aggregates), nor on fewer than MIN_CASES cases;
    - ``underrated``: converts at 1.5 times the base rate or more (the interval's low end above
      the base rate) but gives fewer points on average than the typical positive rule;
    - ``negative but converts``: takes points away from cases that convert above the base rate.
    """
    if base is None:
        return stats
    positive = [s.mean_points for s in stats if s.mean_points > 0]
    typical = statistics.median(positive) if positive else 0.0
    out = []
    for s in stats:
        flag = None
        lift = s.rate.lift
        everyone = s.fired_lost == lost and s.fired_won == won  # lift 1 by construction
        enough = s.rate.cases >= MIN_CASES and not everyone
        if s.points is not None and enough and lift is not None:
            if s.mean_points > 0 and lift < 1.1:
                flag = "overrated"
            elif s.mean_points > 0 and lift >= 1.5 and s.rate.low > base:
                if s.mean_points < typical:
                    flag = "underrated"
            elif s.mean_points < 0 and lift > 1 and s.rate.low > base:
                flag = "negative but converts"
        out.append(attrs.evolve(s, flag=flag))
    return out


# ---- text ---------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _num(x: float | None, digits: int) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.{digits}g}"


def _interval(iv: tuple[float, float]) -> str:
    return f"[{iv[0]:.1%}, {iv[1]:.1%}]"


def _clip(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _rate_row(dimension: str, s: Rate, money: bool = False) -> list[str]:
    row = [dimension, s.value, str(s.won), str(s.cases), _pct(s.rate),
           _interval((s.low, s.high)), _num(s.lift, 3)]
    return row + [f"{s.value_won:,.0f}"] if money else row


def _table(head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "  (none)"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join("  " + line.rstrip() for line in lines)
