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
from test_properties import contacts, event_lists, scripts
from test_sql_differential import assert_same

import leaddsl

batch = pytest.importorskip("leaddsl.batch")
pytest.importorskip("duckdb")

from leaddsl.sql.compiler import ContactSQL, member_conditions  # noqa: E402


@contextmanager
def paths_taken() -> Iterator[list[str]]:
    """The scoring queries a batch run executes: "one", "two" or "dedup", in order."""
    taken: list[str] = []
    real, cached = batch._scoring_sql, batch._built

    def spy(rules: Any, tests: Any, fixed: Any, dedup: bool, one_pass: bool = False) -> Any:
        taken.append("dedup" if dedup else "one" if one_pass else "two")
        return real(rules, tests, fixed, dedup, one_pass)

    # (Each query built afresh, so that every run of a script is seen, not only its first.)
    batch._scoring_sql, batch._built = spy, lambda rules, key, build: build()
    try:
        yield taken
    finally:
        batch._scoring_sql, batch._built = real, cached


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


EXACT = """score engagement:
    when opened email: {opened}
    when visited page "pricing": {visited}
    decay half-life {half_life}
classify tier:
    up when engagement {test}
    down otherwise
"""


@pytest.mark.parametrize("as_of", [None, "2026-03-10T08:00:00Z", "2026-03-12T08:00:00Z"])
@pytest.mark.parametrize(("opened", "visited", "half_life", "test", "days", "visits", "label"), [
    # Ten opens of +0.1 at the as-of time (each weighs 1): 1.0 exactly, as in Python (a sum
    # of the ten products would be 0.9999999999999999).
    ("+0.1", "+5", "1 day", ">= 1", ["2026-03-10T08:00:00Z"] * 10, 0, "up"),
    # +2 and -2 on the same days cancel to 0 exactly (a sum of mixed-sign products may not).
    ("-2", "+2", "3 days", "> 0", ["2026-03-10T08:00:00Z", "2026-03-08T08:00:00Z"], 2, "down"),
    ("-2", "+2", "3 days", "> 0", ["2026-03-10T08:00:00Z", "2026-03-07T20:00:00Z"], 2, "down"),
    ("-2", "+2", "5 days", "> 0", ["2026-03-10T08:00:00Z", "2026-03-09T08:00:00Z",
                                   "2026-03-03T08:00:00Z"], 3, "down"),
])
def test_sums_that_python_gets_exactly_stay_exact(as_of: str | None, opened: str, visited: str,
                                                   half_life: str, test: str, days: list[str],
                                                   visits: int, label: str) -> None:
    """A rule's points times the sum of its decay weights, as the Python evaluator computes
    it: the labels agree even on the threshold (once broken by folding rules into one sum)."""
    rules = leaddsl.compile(EXACT.format(opened=opened, visited=visited, half_life=half_life,
                                         test=test))
    events = [{"id": f"v{i}", "contact": "c1", "action": "visited", "object": "page",
               "name": "pricing", "at": day} for i, day in enumerate(days[:visits])]
    events += [{"id": f"o{i}", "contact": "c1", "action": "opened", "object": "email", "at": day}
               for i, day in enumerate(days)]
    if as_of is None:
        got = _same_as_python(rules, [{"id": "c1"}], events)
    else:
        python = leaddsl.score_all(rules, [{"id": "c1"}], events, as_of=as_of)
        got = batch.score(rules, events=events, contacts=[{"id": "c1"}], as_of=as_of, threads=1)
        assert_same(got.contacts[0], python.results["c1"].to_dict(), "c1")
    if as_of in (None, "2026-03-10T08:00:00Z"):  # at the events' own time: on the threshold
        assert got.contacts[0]["labels"]["tier"] == label
