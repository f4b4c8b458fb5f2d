"""The public API on the user's own one-line example and the contract script of the language."""

from __future__ import annotations

from pathlib import Path

import pytest

import leaddsl

ONE_LINER = (
    "when clicked campaign any: +5; when unsubscribed: -10; "
    "qualify when score >= 100 and visited pricing"
)


def _clicks(n: int) -> list[dict[str, str]]:
    return [
        {
            "id": f"e{i}",
            "action": "clicked",
            "object": "campaign",
            "name": "spring",
            "at": f"2026-03-{i % 28 + 1:02d}T10:00:00Z",
        }
        for i in range(n)
    ]


def test_one_liner_compiles_and_scores() -> None:
    rules = leaddsl.compile(ONE_LINER)
    result = rules.score({"id": "c1"}, _clicks(20))
    assert result.total == 100.0
    assert not result.qualified  # the threshold alone is not enough: no pricing visit
    pricing = {
        "id": "p1",
        "action": "visited",
        "object": "page",
        "name": "pricing",
        "at": "2026-03-28T12:00:00Z",
    }
    assert rules.score({"id": "c1"}, [*_clicks(20), pricing]).qualified


def test_unsubscribe_subtracts() -> None:
    rules = leaddsl.compile(ONE_LINER)
    unsub = {"id": "u", "action": "unsubscribed", "object": "email", "at": "2026-03-02"}
    assert rules.score({"id": "c1"}, [*_clicks(2), unsub]).total == 0.0


def test_explain_adds_up_and_names_rules() -> None:
    rules = leaddsl.compile(ONE_LINER)
    result = rules.score({"id": "c1"}, _clicks(3))
    rows = result.explain()
    assert [r.rule for r in rows] == ["when clicked campaign any: +5"]
    assert rows[0].events == ("e0", "e1", "e2")
    assert sum(r.points for r in rows) == result.total


def test_missing_names_failing_terms() -> None:
    rules = leaddsl.compile(ONE_LINER)
    (line,) = rules.score({"id": "c1"}, _clicks(3)).missing()
    assert not line.holds
    assert [(c.text, c.holds) for c in line.conditions] == [
        ("score >= 100", False),
        ("visited pricing", False),
    ]


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.lead"
    path.write_text("qualify when engagment >= 1\nscore engagement:\n    when opened email: +1\n")
    with pytest.raises(leaddsl.CheckError) as info:
        leaddsl.load(path)
    assert str(info.value).startswith(f"{path}:1:14: error: unknown score model 'engagment'")
    assert "did you mean 'engagement'?" in str(info.value)


def test_load_missing_file_is_a_leaddsl_error(tmp_path: Path) -> None:
    with pytest.raises(leaddsl.LeadDSLError, match="cannot read rule script"):
        leaddsl.load(tmp_path / "nope.lead")


@pytest.mark.parametrize("value", ["nan", "inf", float("nan"), float("-inf")])
def test_non_finite_numbers_are_record_errors(value: object) -> None:
    rules = leaddsl.compile("when employees >= 200: +10")
    with pytest.raises(leaddsl.RecordError) as info:
        rules.score({"id": "c1", "employees": value})
    assert info.value.field == "employees"


def test_a_boolean_never_equals_text() -> None:
    as_text = leaddsl.compile('when customer = "true": +1')
    as_bool = leaddsl.compile("when customer = true: +2")
    assert as_text.score({"id": "c1", "customer": True}).total == 0.0
    assert as_bool.score({"id": "c1", "customer": True}).total == 2.0


def test_the_closed_loop_is_reachable_from_the_package() -> None:
    """read_outcomes, History, report, diff and tune are top-level names (the docs use them);
    their modules stay importable under the same names."""
    from leaddsl.report import Report  # the module, although leaddsl.report is the function

    history = leaddsl.History(
        contacts=[{"id": "c1"}, {"id": "c2"}],
        events=[{"id": "e1", "contact": "c1", "action": "visited", "object": "page",
                 "name": "pricing", "at": "2026-03-01T00:00:00Z"}],
        outcomes=leaddsl.read_outcomes([
            {"contact": "c1", "outcome": "won", "at": "2026-04-01"},
            {"contact": "c2", "outcome": "lost", "at": "2026-04-01"}]),
    )
    rules = leaddsl.compile('when visited page "pricing": +10; qualify when score >= 10')
    run = history.backtest(rules)
    assert isinstance(run, leaddsl.Backtest) and isinstance(run.cases[0], leaddsl.Case)
    made = leaddsl.report(run)
    assert isinstance(made, leaddsl.OutcomeReport) and isinstance(made.contacts, Report)
    assert made.contacts.qualification.precision == 1.0
    changed = leaddsl.diff(rules, leaddsl.compile("when opened email: +1"), history)
    assert isinstance(changed, leaddsl.RuleDiff)
    assert [(m.id, m.what) for m in changed.moves] == [("c1", "qualified")]
    assert callable(leaddsl.tune) and leaddsl.Tuned.__name__ == "Tuned"
    for name in ("read_outcomes", "Outcome", "Outcomes", "History", "Backtest", "Case",
                 "report", "OutcomeReport", "diff", "RuleDiff", "tune", "Tuned"):
        assert name in leaddsl.__all__
