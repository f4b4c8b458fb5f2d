"""Outcome records, time-aware backtests (no peeking past an outcome) and the statistics."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leaddsl
from leaddsl.backtest import History
from leaddsl.outcomes import read_outcomes
from leaddsl.report import report
from leaddsl.stats import auc, fit_logistic, log_loss, solve, wilson

RULES = leaddsl.compile(
    """\
score engagement:
    when opened email: +1
    when visited page "pricing": +20
classify band:
    hot when engagement >= 20
    cold otherwise
qualify when visited pricing
account:
    score engagement = sum of contacts by engagement
    qualify when score >= 40
"""
)
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def ev(eid: str, contact: str, name: str, days: float, action: str = "visited",
       obj: str = "page", channel: str | None = None) -> dict[str, object]:
    rec: dict[str, object] = {"id": eid, "contact": contact, "action": action, "object": obj,
                              "name": name, "at": at(days)}
    if channel is not None:
        rec["channel"] = channel
    return rec


# ---- outcome records -----------------------------------------------------------------------


def test_outcomes_from_records_ndjson_and_csv_agree(tmp_path: Path) -> None:
    records = [
        {"contact": "c1", "outcome": "won", "at": "2026-04-01T00:00:00Z", "value": 1200},
        {"account": "a1", "outcome": "lost", "at": "2026-04-02T00:00:00Z"},
        {"contact": "c2", "outcome": "Open", "at": "2026-04-03T00:00:00Z"},
    ]
    nd = tmp_path / "outcomes.ndjson"
    nd.write_text("".join(__import__("json").dumps(r) + "\n" for r in records))
    csv = tmp_path / "outcomes.csv"
    csv.write_text(
        "contact,account,outcome,at,value\n"
        "c1,,won,2026-04-01T00:00:00Z,1200\n"
        ",a1,lost,2026-04-02T00:00:00Z,\n"
        "c2,,Open,2026-04-03T00:00:00Z,\n"
    )
    read = [read_outcomes(src).outcomes for src in (records, nd, csv)]
    assert read[0] == read[1] == read[2]
    first = read[0][0]
    assert (first.subject, first.id, first.won, first.value) == ("contact", "c1", True, 1200.0)
    assert read[0][2].outcome == "open" and not read[0][2].decided
    assert read[2][1].source == f"{csv}:3"


BAD = [
    ("no subject", {"outcome": "won", "at": "2026-01-01"}, "outcomes[0], field 'contact': "
     "an outcome names a contact or an account"),
    ("both subjects", {"contact": "c1", "account": "a1", "outcome": "won", "at": "2026-01-01"},
     "outcomes[0], field 'contact': an outcome names a contact or an account, not both"),
    ("bad outcome", {"contact": "c1", "outcome": "converted", "at": "2026-01-01"},
     "outcomes[0] (id 'c1'), field 'outcome': expected won, lost or open, got 'converted'"),
    ("no time", {"contact": "c1", "outcome": "won"},
     "outcomes[0] (id 'c1'), field 'at': missing time"),
    ("bad time", {"contact": "c1", "outcome": "won", "at": "yesterday"},
     "outcomes[0] (id 'c1'), field 'at': cannot read 'yesterday' as an ISO 8601 time"),
    ("negative value", {"contact": "c1", "outcome": "won", "at": "2026-01-01", "value": -5},
     "outcomes[0] (id 'c1'), field 'value': expected an amount of 0 or more, got -5"),
    ("not an object", ["c1", "won"], "outcomes[0]: an outcome must be an object, got list"),
]


@pytest.mark.parametrize(("rec", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_outcome_names_where_and_which_field(rec: object, message: str) -> None:
    with pytest.raises(leaddsl.RecordError) as info:
        read_outcomes([rec])  # type: ignore[list-item]
    assert str(info.value) == message


def test_collect_sets_every_bad_outcome_aside_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "o.ndjson"
    path.write_text(
        '{"contact": "c1", "outcome": "won", "at": "2026-01-01"}\n'
        "not json\n"
        '{"contact": "c1", "outcome": "lost", "at": "2026-01-02"}\n'
        '{"contact": "c2", "outcome": "maybe", "at": "2026-01-02"}\n'
        '{"contact": "c3", "outcome": "lost", "at": "2026-01-02"}\n'
    )
    got = read_outcomes(path, errors="collect")
    assert [o.id for o in got] == ["c1", "c3"]
    assert [r.source for r in got.rejected] == [f"{path}:2", f"{path}:3", f"{path}:4"]
    assert f"a second outcome for contact 'c1' (the first is at {path}:1)" in got.rejected[1].reason
    with pytest.raises(leaddsl.RecordError, match=r"o.ndjson:2"):
        read_outcomes(path)


def test_a_csv_row_with_extra_cells_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text("contact,outcome,at\nc1,won,2026-01-01,extra\n")
    with pytest.raises(leaddsl.RecordError, match=r"o.csv:2: more cells than the header names"):
        read_outcomes(path)


# ---- backtests: no peeking ------------------------------------------------------------------


def history(extra_events: list[dict[str, object]] = ()) -> History:  # type: ignore[assignment]
    return History(
        accounts=[{"id": "a1"}],
        contacts=[{"id": "c1", "account": "a1"}, {"id": "c2", "account": "a1"}, {"id": "c3"}],
        events=[
            ev("e1", "c1", "pricing", 0, channel="ads"),
            ev("e2", "c1", "news", 1, action="opened", obj="email", channel="email"),
            ev("e3", "c2", "news", 2, action="opened", obj="email", channel="email"),
            # at the very moment of c2's outcome: it does not count
            ev("e4", "c2", "pricing", 10, channel="web"),
            ev("e5", "c3", "pricing", 3),
            *extra_events,
        ],
        outcomes=[
            {"contact": "c1", "outcome": "won", "at": at(5)},
            {"contact": "c2", "outcome": "lost", "at": at(10)},
            {"contact": "c3", "outcome": "open", "at": at(20)},
            {"account": "a1", "outcome": "won", "at": at(5)},
        ],
    )


def test_each_case_is_scored_just_before_its_outcome() -> None:
    run = history().backtest(RULES)
    by = {(c.outcome.subject, c.outcome.id): c for c in run.cases}
    assert by[("contact", "c1")].result.total == 21.0
    assert by[("contact", "c2")].result.total == 1.0  # the pricing visit at the outcome: no
    assert not by[("contact", "c2")].result.qualified
    assert by[("contact", "c1")].result.as_of < datetime.fromisoformat(at(5))
    assert by[("account", "a1")].result.total == 22.0  # not c2's pricing visit at day 10
    assert by[("contact", "c1")].channels == ("ads", "email")
    assert by[("contact", "c3")].channels == ("(none)",)
    # An account: the channels that earned its contacts points before its outcome (e4 is
    # later, through "web").
    assert by[("account", "a1")].channels == ("ads", "email")
    early = history([ev("e6", "c2", "pricing", 4, channel="social")]).backtest(RULES)
    assert [c.channels for c in early.of("account")] == [("ads", "email", "social")]
    made = report(run).accounts
    assert made is not None
    assert [(s.value, s.won) for s in made.segments if s.dimension == "channel"] == [
        ("ads", 1), ("email", 1)]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["c1", "c2"]),
            st.floats(min_value=10, max_value=400),
            st.sampled_from([("visited", "page", "pricing"), ("opened", "email", "news"),
                             ("visited", "page", "blog")]),
        ),
        max_size=12,
    )
)
def test_events_after_an_outcome_never_change_the_report(
    later: list[tuple[str, float, tuple[str, str, str]]],
) -> None:
    """The leak a backtest exists to prevent: nothing at or after an outcome counts."""
    base = report(history().backtest(RULES)).to_dict()
    extra = [
        ev(f"x{i}", cid, name, day, action=action, obj=obj, channel="web")
        for i, (cid, day, (action, obj, name)) in enumerate(later)
    ]
    assert report(history(extra).backtest(RULES)).to_dict() == base


def test_scoring_at_the_end_would_have_peeked() -> None:
    """Scored as of the latest event instead, c2 looks qualified: the leak is real here."""
    engine, _ = history().engine(RULES)
    assert engine.contact("c2").qualified
    run = history().backtest(RULES)
    assert [c.result.qualified for c in run.of("contact")] == [True, False]


def test_an_outcome_for_an_unknown_contact_is_named_or_set_aside() -> None:
    h = History(contacts=[{"id": "c1"}],
                outcomes=[{"contact": "c9", "outcome": "won", "at": "2026-01-01"}])
    with pytest.raises(leaddsl.RecordError, match=r"outcomes\[0\] \(id 'c9'\), field 'contact': "
                       r"unknown contact 'c9'"):
        h.backtest(RULES)
    h = History(contacts=[{"id": "c1"}], errors="collect",
                outcomes=[{"contact": "c9", "outcome": "won", "at": "2026-01-01"}])
    run = h.backtest(RULES)
    assert run.cases == () and "unknown contact 'c9'" in run.rejected[0].reason


def test_account_outcomes_need_an_account_block() -> None:
    with pytest.raises(leaddsl.LeadDSLError, match="no account block"):
        history().backtest(leaddsl.compile("when opened email: +1"))


def test_engine_contact_at_ignores_later_events_and_keeps_the_cache() -> None:
    engine, _ = history().engine(RULES)
    latest = engine.contact("c1")
    assert engine.contact_at("c1", at(0.5)).total == 20.0
    assert engine.contact("c1") is latest and latest.total == 21.0


# ---- statistics ------------------------------------------------------------------------------


def test_wilson_matches_published_values() -> None:
    # Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662; 0/10 -> 0 to 0.2775
    low, high = wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert tuple(round(v, 4) for v in wilson(0, 10)) == (0.0, 0.2775)
    assert wilson(0, 0) == (0.0, 1.0)


@given(st.integers(0, 200), st.integers(1, 200))
def test_wilson_holds_the_proportion(k: int, n: int) -> None:
    k = min(k, n)
    low, high = wilson(k, n)
    assert 0 <= low <= k / n <= high <= 1


@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=30))
def test_auc_is_the_share_of_winner_loser_pairs_ranked_right(
    rows: list[tuple[int, bool]],
) -> None:
    scores, labels = [float(s) for s, _ in rows], [y for _, y in rows]
    pos = [s for s, y in rows if y]
    neg = [s for s, y in rows if not y]
    if not pos or not neg:
        assert auc(scores, labels) is None
        return
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    assert math.isclose(auc(scores, labels) or 0.0, sum(pairs) / len(pairs))


def test_solve_and_log_loss() -> None:
    assert [round(v, 9) for v in solve([[2, 1], [1, 3]], [3, 5])] == [0.8, 1.4]
    assert math.isclose(log_loss([0.5, 0.5], [True, False]), math.log(2))


def test_logistic_fit_recovers_known_weights() -> None:
    import random

    rng = random.Random(1)
    rows, labels = [], []
    for _ in range(4000):
        x = [rng.randint(0, 4), float(rng.random() < 0.5), rng.gauss(0, 1)]
        z = -1.0 + 0.8 * x[0] + 1.5 * x[1] + 0.0 * x[2]
        rows.append(x)
        labels.append(rng.random() < 1 / (1 + math.exp(-z)))
    fit = fit_logistic(rows, labels, l2=0.01)
    assert abs(fit.coef[0] - 0.8) < 0.12 and abs(fit.coef[1] - 1.5) < 0.25
    assert abs(fit.coef[2]) < 0.12 and abs(fit.intercept + 1.0) < 0.25
    shrunk = fit_logistic(rows, labels, l2=500.0)
    assert all(abs(s) < abs(f) for s, f in zip(shrunk.coef[:2], fit.coef[:2], strict=True))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1), st.booleans()),
                min_size=2, max_size=40))
def test_logistic_fit_sets_the_penalised_gradient_to_zero(
    data: list[tuple[int, int, bool]],
) -> None:
    rows = [[float(a), float(b)] for a, b, _ in data]
    labels = [y for *_, y in data]
    fit = fit_logistic(rows, labels, l2=1.0)
    assert all(math.isfinite(c) for c in fit.coef)
    # The intercept's equation: predicted and observed wins agree (it is not penalised).
    predicted = sum(fit.predict(r) for r in rows)
    assert abs(predicted - sum(labels)) < 1e-5


_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["won", "LOST", "open", "c1",
                                                           "2026-01-01T00:00:00Z", "1e400"]))


@given(st.lists(st.dictionaries(st.sampled_from(["contact", "account", "outcome", "at",
                                                 "value", "id"]), _values), max_size=6))
def test_any_outcome_records_give_outcomes_or_a_record_error(recs: list[dict[str, object]],
                                                             ) -> None:
    try:
        got = read_outcomes(recs)
    except leaddsl.RecordError as err:
        assert err.source is not None and err.source.startswith("outcomes[")
        collected = read_outcomes(recs, errors="collect")
        assert len(collected.outcomes) + len(collected.rejected) == len(recs)
        assert collected.rejected
    else:
        assert len(got.outcomes) == len(recs)
        assert all(o.outcome in ("won", "lost", "open") for o in got)


def test_before_scores_each_outcome_earlier() -> None:
    run = history().backtest(RULES, before=4.5 * 86_400)  # c1: day 0.5, after its pricing visit
    assert [c.result.total for c in run.of("contact")] == [20.0, 1.0]
    run = history().backtest(RULES, before=5.5 * 86_400)  # c1: before everything it did
    assert [c.result.total for c in run.of("contact")] == [0.0, 1.0]
    with pytest.raises(leaddsl.LeadDSLError, match="before must be at least"):
        history().backtest(RULES, before=0)


def test_logistic_fit_survives_a_feature_that_separates_the_classes() -> None:
    """Perfect separation has no unpenalised optimum; the ridge keeps one, and damped Newton
    steps reach it instead of overshooting into a singular system."""
    rows = [[float(i)] for i in range(40)]
    labels = [i >= 20 for i in range(40)]
    for l2 in (1.0, 1e-3):
        fit = fit_logistic(rows, labels, l2=l2)
        assert math.isfinite(fit.coef[0]) and fit.coef[0] > 0
        assert fit.predict([39.0]) > 0.5 > fit.predict([0.0])
        assert abs(sum(fit.predict(r) for r in rows) - 20) < 1e-5  # the intercept's equation
    with pytest.raises(ValueError, match="l2 must be more than 0"):
        fit_logistic(rows, labels, l2=0.0)


def test_tune_on_a_score_that_already_separates_winners() -> None:
    """The calibration of the current script's total must not break when it is perfect."""
    from leaddsl.tune import tune

    contacts = [{"id": f"c{i:02d}"} for i in range(40)]
    events = [ev(f"p{i}", f"c{i:02d}", "pricing", 1) for i in range(20)]
    events += [ev(f"o{i}", f"c{i:02d}", "news", 1, action="opened", obj="email")
               for i in range(40)]
    outcomes = [{"contact": f"c{i:02d}", "outcome": "won" if i < 20 else "lost", "at": at(30)}
                for i in range(40)]
    rules = leaddsl.compile('when visited page "pricing": +3\nwhen opened email: +1\n'
                            "qualify when score >= 3")
    tuned = tune(rules, History(contacts=contacts, events=events, outcomes=outcomes))
    assert tuned.before.auc == 1.0 and tuned.after.auc == 1.0
    assert math.isfinite(tuned.before.log_loss) and math.isfinite(tuned.after.log_loss)
    with pytest.raises(leaddsl.LeadDSLError, match="l2 must be more than 0"):
        tune(rules, History(contacts=contacts, events=events, outcomes=outcomes), l2=0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=10, max_size=40),
       st.integers(0, 39))
def test_cross_fitted_never_predicts_a_case_from_itself(rows: list[tuple[int, bool]],
                                                        flip: int) -> None:
    """Changing one case's outcome leaves its own prediction as it was (it was not in the fit)."""
    from leaddsl.stats import cross_fitted

    scores, labels = [float(s) for s, _ in rows], [y for _, y in rows]
    flip %= len(rows)
    first = cross_fitted(scores, labels)
    labels[flip] = not labels[flip]
    second = cross_fitted(scores, labels)
    assert math.isclose(first[flip], second[flip], rel_tol=1e-9, abs_tol=1e-12)
    assert all(0 < p < 1 for p in first)


def test_a_resent_event_keeps_the_channel_of_the_one_that_counted(tmp_path: Path) -> None:
    """The engine counts an event id once per contact, the first time it arrives: its channel
    is the first one's, whether the events are records or a file."""
    events = [ev("x", "c1", "pricing", 1, channel="ads"),
              ev("x", "c1", "pricing", 2, channel="social"),
              ev("y", "c1", "pricing", 3, channel="web")]
    path = tmp_path / "events.ndjson"
    path.write_text("".join(__import__("json").dumps(e) + "\n" for e in events))
    rules = leaddsl.compile('when visited page "pricing": +10')
    for source in (events, path):
        h = History(contacts=[{"id": "c1"}], events=source,
                    outcomes=[{"contact": "c1", "outcome": "won", "at": at(9)}])
        (case,) = h.backtest(rules).cases
        assert case.result.total == 20.0
        assert case.channels == ("ads", "web")


def test_logistic_standard_errors_match_the_log_odds_ratio_of_a_two_by_two_table() -> None:
    """One yes/no feature, next to no penalty: the coefficient is the log odds ratio and its
    standard error Woolf's sqrt(1/a + 1/b + 1/c + 1/d)."""
    a, b, c, d = 30, 70, 12, 88  # feature on: 30 won, 70 lost; off: 12 won, 88 lost
    rows = [[1.0]] * (a + b) + [[0.0]] * (c + d)
    labels = [True] * a + [False] * b + [True] * c + [False] * d
    fit = fit_logistic(rows, labels, l2=1e-9)
    assert math.isclose(fit.coef[0], math.log(a * d / (b * c)), rel_tol=1e-6)
    assert math.isclose(fit.se[0], math.sqrt(1 / a + 1 / b + 1 / c + 1 / d), rel_tol=1e-5)
    # A constant feature carries no evidence; more penalty, less uncertainty.
    assert math.isnan(fit_logistic([[1.0, r[0]] for r in rows], labels, l2=1e-9).se[0])
    assert fit_logistic(rows, labels, l2=50.0).se[0] < fit.se[0]


def test_a_backtest_can_reuse_a_loaded_engine_of_its_rules_only() -> None:
    from leaddsl.backtest import backtest

    h = history()
    loaded = h.engine(RULES)
    again = backtest(RULES, h, loaded=loaded)
    assert report(again).to_dict() == report(h.backtest(RULES)).to_dict()
    with pytest.raises(leaddsl.LeadDSLError, match="other rules"):
        backtest(leaddsl.compile(RULES.source), h, loaded=loaded)


def test_a_contact_first_seen_after_an_account_outcome_is_not_in_its_committee() -> None:
    """Customers add people after signing: a contact whose every event is later than the
    account's outcome was not known then and must not count (a committee-size leak). A contact
    with no events at all has no date to go by and stays."""
    rules = leaddsl.compile(
        "when visited page any: +1\naccount:\n    score size:\n"
        "        when count of contacts >= 3: +50\n        when count of contacts >= 2: +20\n"
    )

    def run(*contacts: str) -> float:
        h = History(
            accounts=[{"id": "a1"}],
            contacts=[{"id": c, "account": "a1"} for c in contacts],
            events=[e for e in (ev("e1", "c1", "blog", 0), ev("e2", "c2", "blog", 40),
                                ev("e3", "c2", "blog", 50)) if e["contact"] in contacts],
            outcomes=[{"account": "a1", "outcome": "won", "at": at(30)}])
        (case,) = h.backtest(rules).cases
        return case.result.total

    assert run("c1", "c2") == 0.0  # c2 is first seen on day 40, after the outcome on day 30
    assert run("c1", "c3") == 20.0  # c3 has no events: nothing says it came later
    assert run("c1", "c2", "c3") == 20.0
