"""The batch backend's one-pass query, against the Python evaluator.

Without a fixed as-of time, a script with no rule windows, expiry, `once per name`, velocity or
`at least N times within` (N > 1) is scored while the events are read: decay is summed relative
to a fixed reference time and scaled to the as-of time (the latest valid event) afterwards.
These tests check that path against ``leaddsl.score_all`` — on generated scripts, on decay far
from the reference time (which must fall back to two passes), with events of unknown contacts
later than every known one (they must not move the as-of time) and with repeated ids among
them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from test_properties import (
    ACTIONS,
    LIMITS,
    NAMES,
    OBJECT_KINDS,
    POINTS,
    QUOTED_NAMES,
    Script,
    Vocab,
    _duration,
    contacts,
    event_lists,
    event_patterns,
    scripts,
)
from test_sql_differential import assert_same

import leaddsl

batch = pytest.importorskip("leaddsl.batch")
pytest.importorskip("duckdb")

from leaddsl.sql.compiler import ContactSQL, member_conditions  # noqa: E402


@contextmanager
def paths_taken() -> Iterator[list[str]]:
    """The scoring queries a batch run executes: "one", "two" or "dedup", in order."""
    taken: list[str] = []
    real = batch._scoring_sql

    def spy(rules: Any, tests: Any, fixed: Any, dedup: bool, one_pass: bool = False) -> Any:
        taken.append("dedup" if dedup else "one" if one_pass else "two")
        return real(rules, tests, fixed, dedup, one_pass)

    batch._scoring_sql = spy
    try:
        yield taken
    finally:
        batch._scoring_sql = real


def _same_as_python(rules: leaddsl.Ruleset, people: list[dict[str, Any]],
                    events: list[dict[str, Any]], errors: str = "raise") -> Any:
    want = leaddsl.score_all(rules, people, events, errors=errors)
    got = batch.score(rules, events=events, contacts=people, errors=errors, threads=1)
    assert [r["id"] for r in got.contacts] == list(want.results)
    for row in got.contacts:
        assert_same(row, want.results[row["id"]].to_dict(), f"contact {row['id']}")
    assert got.events == want.events and got.as_of == want.as_of
    assert [(r.source, r.reason) for r in got.rejected] == [
        (r.source, r.reason) for r in want.rejected]
    return got


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(st.data())
def test_one_pass_matches_the_python_evaluator(data: st.DataObject) -> None:
    script = data.draw(scripts(bool_lists=2))
    rules = leaddsl.compile(script.text)
    assume(ContactSQL.one_pass(rules.plan))
    note(script.text)
    people, events = [], []
    for j in range(data.draw(st.integers(1, 4))):
        person = data.draw(contacts())
        person["id"] = f"p{j}"
        people.append(person)
        own = data.draw(event_lists(person["id"], script.patterns))
        for ev in own:
            ev["contact"] = person["id"]
        events += own
    note(repr(people))
    note(repr(events))
    with paths_taken() as taken:
        _same_as_python(rules, people, events)
    assert taken[0] == "one"


DECAY = """score engagement:
    when opened email: +1 limit 20
    when visited page "pricing": +15
    when visited page any: +2
    when unsubscribed: -10
    decay half-life {half_life}
qualify when score >= 10 and visited pricing within 30 days
classify band:
    hot when engagement >= 16
    cold otherwise
"""


def _events(contact: str, days: list[str]) -> list[dict[str, Any]]:
    kinds = [("visited", "page", "pricing"), ("opened", "email", "e1"),
             ("visited", "page", "blog"), ("unsubscribed", None, None)]
    out = []
    for i, day in enumerate(days):
        action, obj, name = kinds[i % len(kinds)]
        ev = {"id": f"{contact}-{i}", "contact": contact, "action": action, "at": day}
        if obj is not None:
            ev.update(object=obj, name=name)
        out.append(ev)
    return out


def test_decay_near_the_reference_time_takes_one_pass() -> None:
    rules = leaddsl.compile(DECAY.format(half_life="30 days"))
    people = [{"id": "c1"}, {"id": "c2"}, {"id": "c3"}]
    events = (_events("c1", ["2026-01-05T10:00:00Z", "2026-02-01", "2026-03-01T08:30:00+02:00"])
              + _events("c2", ["2026-02-27", "2026-02-28", "2026-03-01"]))
    with paths_taken() as taken:
        got = _same_as_python(rules, people, events)
    assert taken == ["one"]
    assert got.contacts[2]["total"] == 0.0  # no events
    assert got.contacts[1]["qualified"] and got.contacts[1]["labels"] == {"band": "hot"}


def test_decay_far_from_the_reference_time_falls_back_to_two_passes() -> None:
    """A one-hour half-life over events of 2019 and 2020: 2 ** ((t - r) / h) would underflow
    (years before the reference time), so the run scores them in two passes instead."""
    rules = leaddsl.compile(DECAY.format(half_life="1 hour"))
    people = [{"id": "c1"}, {"id": "c2"}]
    events = (_events("c1", ["2019-06-01T10:00:00Z", "2020-01-01T09:00:00Z",
                             "2020-01-01T09:30:00Z"])
              + _events("c2", ["2020-01-01T08:00:00Z", "2020-01-01T10:00:00Z"]))
    with paths_taken() as taken:
        got = _same_as_python(rules, people, events)
    assert taken == ["one", "two"]
    assert got.contacts[0]["total"] > 0.0


def test_unknown_contacts_events_do_not_move_the_as_of_time() -> None:
    """One pass aggregates every event, unknown contacts' too; the latest valid event of a
    known contact is the as-of time, and the others are set aside, named."""
    rules = leaddsl.compile(DECAY.format(half_life="7 days"))
    people = [{"id": "c1"}]
    events = (_events("c1", ["2026-02-01", "2026-03-01"])
              + _events("ghost", ["2026-06-01", "2026-07-01"])
              + [{"id": "x", "contact": "c1", "action": "visited", "at": "2026-08-01",
                  "object": ""}, {"id": "y", "contact": "c1", "at": "2026-09-01"}])
    with paths_taken() as taken:
        got = _same_as_python(rules, people, events, errors="collect")
    assert taken == ["one"]
    assert got.as_of is not None and got.as_of.isoformat() == "2026-08-01T00:00:00+00:00"
    assert [r.source for r in got.rejected] == ["events[2]", "events[3]", "events[5]"]


def test_repeated_ids_among_unknown_contacts_take_the_exact_pass() -> None:
    """The one-pass id check counts unknown contacts' events too: a repetition there takes
    the exact pass, which counts no duplicate (those events are set aside, as in Python)."""
    rules = leaddsl.compile(DECAY.format(half_life="7 days"))
    events = _events("c1", ["2026-02-01", "2026-03-01"]) + [
        {"id": "g", "contact": "ghost", "action": "visited", "at": "2026-03-01"},
        {"id": "g", "contact": "ghost", "action": "visited", "at": "2026-03-02"},
    ]
    with paths_taken() as taken:
        got = _same_as_python(rules, [{"id": "c1"}], events, errors="collect")
    assert taken == ["one", "dedup"]
    assert got.duplicates == 0 and len(got.rejected) == 2


@pytest.mark.parametrize(("text", "one"), [
    (DECAY.format(half_life="30 days"), True),
    ("when visited page any: +1 within 7 days", False),
    ("score a:\n    when visited: +1\n    expire after 30 days", False),
    ("when clicked campaign any: +5 once per name", False),
    ("when visited: +1\nqualify when score gained within 7 days >= 10", False),
    ("when visited: +1\nqualify when visited at least 2 times within 7 days", False),
    ("when visited: +1\nqualify when visited at least 2 times", True),
    ("when visited: +1 once\nqualify when inactive for 30 days", True),
])
def test_which_scripts_take_one_pass(text: str, one: bool) -> None:
    rules = leaddsl.compile(text)
    tests = () if rules.plan.account is None else member_conditions(rules.plan.account)
    assert ContactSQL.one_pass(rules.plan, tests) is one
    if not one:  # asking for one pass anyway is refused, not compiled into a broken query
        with pytest.raises(ValueError, match="cannot be scored in one pass"):
            ContactSQL(rules.plan, extra=tests, reference=1.8e9)


FOLDED = """score engagement:
    when visited page "pricing": +15
    when visited page any: +2
    when opened email: +1 limit 3
    when unsubscribed: -10
    when visited page "blog": +4 within 30 days
    decay half-life 10 days
"""


@pytest.mark.parametrize("as_of", [None, "2026-03-05T00:00:00Z"])
def test_a_decayed_models_plain_rules_share_one_sum(as_of: str | None) -> None:
    """The plain rules of a decayed model (no cap, no window, not once) add into one
    aggregate; a capped or windowed rule keeps its own. Scores equal Python's either way,
    in one pass and in two (a fixed as-of time)."""
    rules = leaddsl.compile(FOLDED)
    sql = ContactSQL(rules.plan)
    assert sql._folds() == {"engagement": [0, 1, 3]}  # not the cap (2), not the window (4)
    people = [{"id": "c1"}, {"id": "c2"}, {"id": "c3"}]
    events = (_events("c1", ["2026-01-05T10:00:00Z", "2026-02-01", "2026-02-10", "2026-03-01",
                             "2026-03-02", "2026-03-03"])
              + _events("c2", ["2026-02-27", "2026-02-28"]))
    want = leaddsl.score_all(rules, people, events, as_of=as_of)
    got = batch.score(rules, events=events, contacts=people, as_of=as_of, threads=1)
    for row in got.contacts:
        assert_same(row, want.results[row["id"]].to_dict(), f"contact {row['id']}")
    assert got.contacts[0]["total"] != 0.0 and got.contacts[2]["total"] == 0.0


@st.composite
def decayed_scripts(draw: st.DrawFn) -> Script:
    """A decayed model of 2 to 6 event rules over few words (overlapping patterns), a few of
    them capped: most of its rules add into one folded sum."""
    vocab = Vocab(
        draw(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2, unique=True)),
        draw(st.lists(st.sampled_from(OBJECT_KINDS), min_size=1, max_size=2, unique=True)),
        draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True)),
        draw(st.lists(st.sampled_from(QUOTED_NAMES), min_size=1, max_size=2, unique=True)),
        0,
    )
    lines, patterns = [], set()
    for _ in range(draw(st.integers(2, 6))):
        pattern = draw(event_patterns(vocab))
        if pattern in patterns:
            continue  # two rules of one pattern would both score: nothing is folded
        patterns.add(pattern)
        cap = f" limit {draw(st.sampled_from(LIMITS))}" if draw(st.integers(0, 3)) == 0 else ""
        lines.append(f"    when {pattern}: {draw(st.sampled_from(POINTS))}{cap}")
    text = "\n".join(["score engagement:", *lines,
                      f"    decay half-life {_duration(draw)}"]) + "\n"
    return Script(text, ["engagement"], vocab.seen)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(st.data())
def test_folded_sums_match_the_python_evaluator(data: st.DataObject) -> None:
    script = data.draw(decayed_scripts())
    rules = leaddsl.compile(script.text)
    assume(ContactSQL(rules.plan)._folds())
    note(script.text)
    people, events = [], []
    for j in range(data.draw(st.integers(1, 3))):
        people.append({"id": f"p{j}"})
        own = data.draw(event_lists(f"p{j}", script.patterns))
        for ev in own:
            ev["contact"] = f"p{j}"
        events += own
    note(repr(events))
    as_of = data.draw(st.sampled_from([None, "2026-03-01T00:00:00Z"]))
    want = leaddsl.score_all(rules, people, events, as_of=as_of, errors="collect")
    got = batch.score(rules, events=events, contacts=people, as_of=as_of, threads=1,
                      errors="collect")
    for row in got.contacts:
        assert_same(row, want.results[row["id"]].to_dict(), f"contact {row['id']}")
