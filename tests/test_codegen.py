"""The generated scorer (leaddsl/codegen.py) against the closure evaluator, its reference.

Both must give the same numbers to the last bit — the generated code performs the same
floating-point operations — and the same labels, flags, explanations and qualify checks.
Generated source must hold no text of the script.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from test_properties import (  # tests/ is on sys.path under pytest's default import mode
    as_of_times,
    conflicting_events,
    contacts,
    event_lists,
    scripts,
)

import leaddsl
from leaddsl.ruleset import Ruleset


def _closures(rules: Ruleset) -> Ruleset:
    return Ruleset(rules.plan, rules.diagnostics, generated=False)


def _everything(result: leaddsl.ContactResult) -> dict[str, Any]:
    return {
        "total": result.total,
        "scores": dict(result.scores),
        "labels": dict(result.labels),
        "qualified": result.qualified,
        "disqualified": result.disqualified,
        "reasons": result.reasons,
        "as_of": result.as_of,
        "explain": [(c.model, c.rule, c.points, c.raw, c.capped, c.events)
                    for c in result.explain()],
        "missing": result.missing(),
    }


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_generated_scorer_equals_the_closures_exactly(data: st.DataObject) -> None:
    script = data.draw(scripts(bool_lists=2))
    note(script.text)
    rules = leaddsl.compile(script.text)
    contact = data.draw(contacts())
    events = data.draw(event_lists(contact["id"], script.patterns))
    events += data.draw(conflicting_events(events))
    as_of = data.draw(as_of_times(events))
    fast = rules.score(contact, events, as_of)
    slow = _closures(rules).score(contact, events, as_of)
    if rules._scorer() is not None:  # velocity tests keep the closures
        assert fast.state is not None and fast.state.detail is not None
    assert _everything(fast) == _everything(slow)


def test_the_reference_ruleset_is_generated_and_agrees() -> None:
    rules = leaddsl.compile(
        "score engagement:\n"
        "    when opened email: +1 limit 20\n"
        '    when visited page "pricing": +15\n'
        "    when visited page any: +2 once per name\n"
        "    when submitted form any: +25 once\n"
        "    decay half-life 30 days\n"
        "score fit:\n"
        '    when job_title contains "VP": +15\n'
        "    when employees >= 200: +10\n"
        '    when industry in ["software", "fintech"]: +10\n'
        'disqualify "student" when job_title contains "student"\n'
        "classify band:\n"
        "    hot when engagement >= 41\n"
        "    cold otherwise\n"
        "classify priority = band + rank of band\n"
        "qualify when score >= 30 and visited pricing within 30 days\n"
    )
    contact = {"id": "c1", "job_title": "VP Sales", "employees": 500, "industry": "Software"}
    events = [
        {"id": f"e{i}", "action": a, "object": o, "name": n, "at": f"2026-03-{1 + i:02d}T10:00:00Z"}
        for i, (a, o, n) in enumerate(
            [("opened", "email", "n1")] * 25
            + [("visited", "page", "pricing"), ("visited", "page", "docs")] * 2
            + [("submitted", "form", "demo")] * 2
        )
    ]
    assert rules._scorer() is not None
    fast, slow = rules.score(contact, events), _closures(rules).score(contact, events)
    assert _everything(fast) == _everything(slow)
    assert fast.labels == {"band": "hot", "priority": "hot1"}
    assert fast.qualified


@pytest.mark.parametrize(
    "text",
    [
        'x" + __import__("os").system("echo hacked") + "',
        "a'b\"c\\d\n#e",
        '""")\nimport os\n("""',
        "}; DROP TABLE contacts; --",
    ],
)
def test_script_text_never_becomes_source(text: str) -> None:
    """Names, texts and reasons reach the generated function as data: the source holds
    none of them, and they compare as the closures compare them."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    script = (
        f'when visited page "{escaped}": +5\n'
        f'when title contains "{escaped}": +3\n'
        f'disqualify "{escaped}" when title = "{escaped}"\n'
        "classify band:\n"
        f'    "{escaped}" when score >= 5\n'
        "    cold otherwise\n"
    )
    rules = leaddsl.compile(script)
    from leaddsl.codegen import generate

    source = generate(rules).source
    for piece in (text, text.casefold(), "os", "DROP", "hacked"):
        if len(piece) > 2:
            assert piece not in source
    contact = {"id": "c1", "title": text}
    events = [{"id": "e1", "action": "visited", "object": "page", "name": text,
               "at": "2026-01-01T00:00:00Z"}]
    fast, slow = rules.score(contact, events), _closures(rules).score(contact, events)
    assert _everything(fast) == _everything(slow)
    assert fast.reasons == (text,) and fast.labels["band"] == text and fast.total == 8.0


def test_source_map_points_at_the_script_lines() -> None:
    from leaddsl.codegen import generate

    rules = leaddsl.compile(
        "when opened email: +1 limit 3\nwhen employees >= 10: +2\nqualify when score >= 1\n"
    )
    gen = generate(rules)
    lines = gen.source.splitlines()
    by_line: dict[int, list[str]] = {}
    for number, script_line in gen.source_map.items():
        by_line.setdefault(script_line, []).append(lines[number - 1])
    assert any("_copysign" in text for text in by_line[1])  # the cap of line 1
    assert any("_NUM" in text for text in by_line[2])  # the number test of line 2


def test_an_event_test_compiled_later_rewrites_the_generated_scorer() -> None:
    """A condition compiled after the scorer was written may add an event counter (filters
    do so on a Ruleset of their own today; the scorer must not depend on that)."""
    from leaddsl import plan as P

    rules = leaddsl.compile("when visited page any: +1")
    events = [{"id": "e1", "action": "downloaded", "object": "asset",
               "at": "2026-01-01T00:00:00Z"}]
    first = rules._scorer()
    assert first is not None
    test = rules._pred(P.EventCount("downloaded", "asset", None))
    assert rules._scorer() is not first
    result = rules.score({"id": "c1"}, events)
    assert result.state is not None and test(result.state)
    assert not test(rules.score({"id": "c1"}, []).state)  # type: ignore[arg-type]


def test_velocity_keeps_the_closures_and_is_right() -> None:
    rules = leaddsl.compile(
        "when visited page any: +5\nqualify when score gained within 7 days >= 10\n"
    )
    assert rules._scorer() is None
    events = [
        {"id": f"e{i}", "action": "visited", "object": "page", "at": f"2026-01-0{i + 1}T00:00:00Z"}
        for i in range(3)
    ]
    assert rules.score({"id": "c1"}, events).qualified


def test_explain_of_a_summary_replays_only_the_events_it_scored() -> None:
    """Events appended to the engine's list later do not leak into an older result's
    explanation."""
    rules = leaddsl.compile("when opened email: +1")
    events: list[tuple[float, str, tuple[str, str | None, str | None]]] = [
        (100.0, "e1", ("opened", "email", None))
    ]
    result = rules.score_parsed({"id": "c1"}, events, 200.0)
    events.append((150.0, "e2", ("opened", "email", None)))
    assert [c.events for c in result.explain()] == [("e1",)]
    assert result.total == 1.0


def test_empty_and_or_keep_the_meaning_of_all_and_any() -> None:
    """The compiler makes no empty and/or today; the generated code must not turn one into
    an empty tuple (false) where the closures say all() of nothing is true."""
    from leaddsl import plan as P
    from leaddsl.codegen import _Writer

    rules = leaddsl.compile("when opened email: +1")
    w = _Writer(rules)
    assert w.cond(P.AllOf(()), late=True) == "(True)"
    assert w.cond(P.AnyOf(()), late=True) == "(False)"


def test_explain_of_an_older_result_leaves_out_later_adjustments() -> None:
    engine = leaddsl.Engine(leaddsl.compile("when opened email: +1"))
    engine.load(contacts=[{"id": "A"}], events=[{"id": "e1", "contact": "A",
                "action": "opened", "object": "email", "at": "2026-01-01T00:00:00Z"}])
    engine.adjust("A", 2, reason="call went well")
    result = engine.contact("A")
    engine.adjust("A", 5, reason="met at a fair")
    assert result.total == 3.0
    assert sum(c.points for c in result.explain()) == 3.0


def test_events_as_lists_score_as_tuples_do() -> None:
    rules = leaddsl.compile("when opened email: +1")
    events: list[Any] = [[1.0, "e1", ("opened", "email", None)]]
    assert rules.score_parsed({"id": "c1"}, events, None).total == 1.0
