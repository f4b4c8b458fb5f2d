"""Learned weights: a script and a history in, the same script with points fitted to outcomes out.

Each contact rule becomes a feature: how many times it scored the contact as of just before the
outcome (its decayed count, before any cap; 1 or 0 for a condition rule). A logistic regression
with an L2 penalty (leaddsl.stats.fit_logistic) learns each rule's weight in log-odds on a
training split; the weights become points at a rate that keeps the spread of the training
contacts' totals what the current script gives (so thresholds and bands stay in range), rounded
to whole points. The proposal keeps every rule, its condition, caps and modifiers, thresholds
and labels; only the points change. The held-out split measures it against the current script.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import attrs

from . import ast as A
from .backtest import BEFORE, Case, History
from .backtest import held_out as in_held_out
from .diagnostics import Source
from .errors import LeadDSLError
from .formatter import format_script
from .records import Rejected
from .report import Quality, quality
from .ruleset import Ruleset
from .script import compile as compile_script
from .stats import Z95, auc, fit_logistic, log_loss
from .syntax import parse

__all__ = ["Tuned", "Weight", "Fit", "tune"]

MIN_CASES = 20  # below this many decided training cases a fit means nothing


@attrs.frozen
class Weight:
    """One rule's points before and after, and its learned weight in log-odds per hit.

    ``low`` and ``high`` bound the new points with 95% confidence (the weight ± 1.96 standard
    errors, in points): a range that holds 0 means the outcomes cannot tell the rule from
    one worth nothing. NaN for a rule that scored every training contact alike (most often:
    it never fired), which keeps its old points: the outcomes say nothing about it.
    """

    model: str
    line: int
    rule: str
    old: float
    new: float
    log_odds: float
    log_odds_se: float = math.nan
    low: float = math.nan
    high: float = math.nan

    @property
    def clear(self) -> bool:
        """Whether the 95% range of the points leaves out 0."""
        return self.low > 0 or self.high < 0


@attrs.frozen
class Fit:
    """How a script ranks and predicts the held-out cases."""

    auc: float | None
    log_loss: float
    qualification: Quality


@attrs.frozen
class Tuned:
    """The proposed script, the weights behind it, and both scripts on held-out cases."""

    text: str
    weights: tuple[Weight, ...]
    points_per_log_odds: float
    train: int
    held_out: int
    before: Fit
    after: Fit
    rejected: tuple[Rejected, ...] = ()  # records set aside while backtesting

    @property
    def auc_gain(self) -> float | None:
        if self.before.auc is None or self.after.auc is None:
            return None
        return self.after.auc - self.before.auc

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": [attrs.asdict(w) for w in self.weights],
            "points_per_log_odds": self.points_per_log_odds,
            "train": self.train,
            "held_out": self.held_out,
            "before": attrs.asdict(self.before),
            "after": attrs.asdict(self.after),
            "auc_gain": self.auc_gain,
            "rejected": [{"source": r.source, "reason": r.reason} for r in self.rejected],
            "script": self.text,
        }

    def render(self) -> str:
        lines = [f"fitted on {self.train} decided contacts, measured on {self.held_out} held out",
                 f"points per unit of log-odds: {self.points_per_log_odds:.3g}", "",
                 "  line  old     new     95% range       log-odds  rule"]
        for w in self.weights:
            span = "-" if math.isnan(w.low) else f"{w.low:+.1f} to {w.high:+.1f}"
            lines.append(f"  {w.line:<4}  {w.old:<+7g} {w.new:<+7g} {span:<15} "
                         f"{w.log_odds:<+9.3f} {w.rule}")
        kept = sum(1 for w in self.weights if math.isnan(w.log_odds_se))
        if kept:
            lines.append(f"({kept} rule{'s' if kept != 1 else ''} scored every training contact "
                         "alike, most often by never firing: points kept, range '-')")
        unclear = sum(1 for w in self.weights if not w.clear and not math.isnan(w.log_odds_se))
        if unclear:
            lines.append(f"({unclear} of {len(self.weights)} rules have a range holding 0: the "
                         "outcomes cannot tell them from rules worth nothing)")
        lines.append("")
        for name, fit in (("current", self.before), ("proposed", self.after)):
            q = fit.qualification
            lines.append(
                f"{name:<9} held-out AUC {_n(fit.auc)}, log-loss {fit.log_loss:.4f}, "
                f"qualified precision {_p(q.precision)}, recall {_p(q.recall)}"
            )
        gain = self.auc_gain
        lines.append(f"held-out AUC gain: {'-' if gain is None else f'{gain:+.3f}'}")
        return "\n".join(lines) + "\n"


def _n(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def tune(
    rules: Ruleset,
    history: History,
    *,
    held_out: float = 0.3,
    seed: int = 0,
    l2: float = 1.0,
    before: float = BEFORE,
) -> Tuned:
    """Fit the points of ``rules``' contact rules to the contact outcomes of ``history``.

    Disqualified contacts are left out of the fit: disqualification already keeps them from
    sales, and their behaviour (students download everything) would teach the rules nothing
    about the people who can buy.

    Args:
        held_out: the share of decided contacts kept out of the fit, to measure it.
        seed: which contacts are held out: a hash of the seed and each contact's id decides
            (leaddsl.backtest.held_out), so ``diff`` with the same share and seed measures on
            the same contacts.
        l2: the ridge penalty on standardised weights; larger shrinks more towards 0.
        before: score each contact this many seconds before its outcome (default: just
            before), e.g. 14 days to learn what predicts a sale two weeks ahead.

    Raises:
        LeadDSLError: too few decided contact outcomes, or no rules to tune.
    """
    if not 0 < held_out < 1:
        raise LeadDSLError(f"held_out must be between 0 and 1, got {held_out!r}")
    if not l2 > 0:
        raise LeadDSLError(f"l2 must be more than 0 (the penalty keeps the fit finite), got {l2!r}")
    plan = rules.plan
    targets = [(r.span, r.model, r.text, r.points) for r in plan.event_rules]
    targets += [(c.span, c.model, c.text, c.points) for c in plan.condition_rules]
    targets.sort(key=lambda t: t[0].start)
    if not targets:
        raise LeadDSLError("the script has no contact rules whose points could be tuned")
    run = history.backtest(rules, before=before)
    cases = [c for c in run.of("contact") if not c.result.disqualified]
    test_ids = {c.outcome.id for c in cases if in_held_out(c.outcome.id, held_out, seed)}
    train = [c for c in cases if c.outcome.id not in test_ids]
    test = [c for c in cases if c.outcome.id in test_ids]
    if len(train) < MIN_CASES or len({c.outcome.won for c in train}) < 2:
        raise LeadDSLError(
            f"tuning needs at least {MIN_CASES} decided, not disqualified contacts with both "
            f"won and lost among them; the training split has {len(train)}"
        )
    index = {(t[0].start, t[0].end): k for k, t in enumerate(targets)}
    rows = [_features(c, index, len(targets)) for c in train]
    labels = [c.outcome.won for c in train]
    model = fit_logistic(rows, labels, l2=l2)
    scale = _scale(train, rows, model.coef, targets)
    # A rule that scored every training contact alike (most often: it never fired) has no
    # evidence either way; it keeps its points rather than fall to the penalty's 0.
    new_points = {
        (t[0].start, t[0].end): float(t[3]) if math.isnan(se) else _round(beta * scale)
        for t, beta, se in zip(targets, model.coef, model.se, strict=True)
    }
    text = _rewrite(rules.source, plan.filename, new_points)
    proposed = compile_script(text, filename=plan.filename)
    weights = tuple(
        Weight(t[1], t[0].line, t[2], t[3], new_points[(t[0].start, t[0].end)], beta, se,
               (beta - Z95 * se) * scale, (beta + Z95 * se) * scale)
        for t, beta, se in zip(targets, model.coef, model.se, strict=True)
    )
    after_run = history.backtest(proposed, before=before)
    after_cases = {c.outcome.id: c for c in after_run.of("contact")}
    return Tuned(
        text,
        weights,
        scale,
        len(train),
        len(test),
        _measure(train, test),
        _measure([after_cases[c.outcome.id] for c in train],
                 [after_cases[c.outcome.id] for c in test]),
        run.rejected,
    )


def _features(case: Case, index: dict[tuple[int, int], int], width: int) -> list[float]:
    x = [0.0] * width
    for row in case.result.explain():
        k = index.get((row.span.start, row.span.end))
        if k is None:
            continue
        if row.kind == "condition":
            x[k] = 1.0
        elif row.raw != 0 and row.events:
            # The decayed count: points before the cap divided by the points of one hit.
            x[k] = row.before_cap / (row.raw / len(row.events))
        else:
            x[k] = float(len(row.events))
    return x


def _scale(
    train: Sequence[Case],
    rows: Sequence[Sequence[float]],
    coef: Sequence[float],
    targets: Sequence[tuple[Any, ...]],
) -> float:
    """Points per unit of log-odds: the spread (standard deviation) of the training contacts'
    totals stays what the current script gives, so thresholds and bands stay in range."""
    old = statistics.pstdev([c.result.total for c in train])
    new = statistics.pstdev([sum(b * v for b, v in zip(coef, x, strict=True)) for x in rows])
    if old > 0 and new > 0:
        return old / new
    biggest = max((abs(b) for b in coef), default=0.0)  # no spread: match the largest points
    top = max((abs(t[3]) for t in targets), default=1.0) or 1.0
    return top / biggest if biggest > 0 else 1.0


def _round(points: float) -> float:
    """Whole points; a weight under half a point becomes 0 (the rule stays, worth nothing)."""
    value = float(round(points))
    return 0.0 if value == 0 else value


def _measure(train: Sequence[Case], test: Sequence[Case]) -> Fit:
    """AUC and log-loss on ``test`` of the total score, calibrated to odds on ``train``.

    The calibration is a one-feature logistic fit with a light ridge penalty: a total that
    separates winners from losers perfectly has no unpenalised fit.
    """
    calib = fit_logistic([[c.result.total] for c in train], [c.outcome.won for c in train],
                         l2=1.0)
    probs = [calib.predict([c.result.total]) for c in test]
    labels = [c.outcome.won for c in test]
    return Fit(
        auc([c.result.total for c in test], labels),
        log_loss(probs, labels) if test else math.nan,
        quality(test),
    )


def _rewrite(text: str, filename: str, points: dict[tuple[int, int], float]) -> str:
    """The script with new points on the rules named by their spans; comments kept."""
    script = parse(Source(text, filename))

    def item(node: Any) -> Any:
        match node:
            case A.Rule(span=span) if (span.start, span.end) in points:
                return attrs.evolve(node, points=points[(span.start, span.end)])
            case A.ScoreBlock():
                return attrs.evolve(node, items=tuple(item(i) for i in node.items))
            case _:
                return node

    return format_script(
        attrs.evolve(script, statements=tuple(item(s) for s in script.statements)), text
    )
