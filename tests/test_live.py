"""Live scoring: ingest, mergeable per-contact states, triggers, advance and manual adjustments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties import _assert_same, _compiled, contacts, event_lists, scripts

import leaddsl
from leaddsl.live import ContactState, LiveRules

LIVE = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _plain(r: Any) -> dict[str, Any]:
    return {"total": r.total, "scores": dict(r.scores), "labels": dict(r.labels),
            "qualified": r.qualified, "disqualified": r.disqualified, "reasons": list(r.reasons)}


def _drawn(data: st.DataObject) -> tuple[leaddsl.Ruleset, dict[str, Any], list[dict[str, Any]]]:
    script = data.draw(scripts())
    rules = _compiled(script)
    contact = data.draw(contacts())
    events = data.draw(event_lists(contact["id"], script.patterns))
    for ev in events:
        ev["contact"] = contact["id"]
    return rules, contact, events


# ---- properties --------------------------------------------------------------------------------


@LIVE
@given(st.data())
def test_ingest_one_by_one_equals_batch(data: st.DataObject) -> None:
    """Events ingested one at a time, in any order and some twice, give the batch result."""
    rules, contact, events = _drawn(data)
    engine = leaddsl.Engine(rules)
    engine.load(contacts=[contact])
    report = engine.ingest_many(events)
    assert report.rejected == ()
    _assert_same(_plain(engine.contact(contact["id"])), _plain(rules.score(contact, events)))
    result = engine.contact(contact["id"])
    assert sum(r.points for r in result.explain()) == pytest.approx(result.total, abs=1e-9)


@LIVE
@given(st.data())
def test_a_bulk_ingest_answers_as_a_batch_before_and_after_its_summaries(
        data: st.DataObject) -> None:
    """Bulk ingest (transitions off) answers first from the events, then, asked again after
    the time moved on or after an event of its own, from the contact's live summary: every
    answer equals the batch's at that time."""
    rules, contact, events = _drawn(data)
    cut = data.draw(st.integers(0, len(events)))
    days = data.draw(st.integers(0, 200))
    cid = contact["id"]
    engine = leaddsl.Engine(rules, transitions=False)
    engine.load(contacts=[contact])
    engine.ingest_many(events[:cut])
    _assert_same(_plain(engine.contact(cid)), _plain(rules.score(contact, events[:cut])))
    assert cid not in engine._states  # a first answer needs no summary
    when = datetime(2026, 9, 1, tzinfo=UTC).timestamp() + days * 86400.0
    engine.advance(when)
    _assert_same(_plain(engine.contact(cid)),
                 _plain(rules.score(contact, events[:cut], as_of=when)))
    assert (cid in engine._states) == (cut > 0)  # asked again: live from now on
    for ev in events[cut:]:
        engine.ingest(ev)
    _assert_same(_plain(engine.contact(cid)), _plain(rules.score(contact, events, as_of=when)))


def _unique(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first delivery of each id (and every event without one)."""
    seen, out = set(), []
    for ev in events:
        eid = ev.get("id")
        if eid is not None and str(eid) in seen:
            continue
        if eid is not None:
            seen.add(str(eid))
        out.append(ev)
    return out


def _state(live: LiveRules, events: list[dict[str, Any]]) -> ContactState:
    st_ = live.new()
    for i, ev in enumerate(events):
        rec = leaddsl.records.check_event(ev, f"events[{i}]")
        live.add(st_, rec.at, rec.id or f"events[{i}]", (rec.action, rec.object, rec.name))
    return st_


@LIVE
@given(st.data())
def test_partial_states_merge_into_the_whole(data: st.DataObject) -> None:
    """States built from disjoint event sets merge into the state of all of them, either way
    round, and survive a trip through JSON."""
    rules, contact, events = _drawn(data)
    events = _unique(events)
    split = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    left = [e for e, side in zip(events, split, strict=True) if side]
    right = [e for e, side in zip(events, split, strict=True) if not side]
    live = LiveRules(rules)
    whole = _state(live, events)
    latest = max((leaddsl.records.parse_time(e["at"]) for e in events), default=None)
    attrs_ = leaddsl.records.check_contact(contact, "contact", rules.plan.numeric_attributes)
    want = _plain(rules.score(contact, events))
    for merged in (live.merge(_state(live, left), _state(live, right)),
                   live.merge(_state(live, right), _state(live, left))):
        _assert_same(_plain(live.result(attrs_, merged, latest)), want)
    again = ContactState.from_data(orjson.loads(orjson.dumps(whole.to_data())))
    _assert_same(_plain(live.result(attrs_, again, latest)), want)


@LIVE
@given(st.data())
def test_a_state_answers_later_times_like_a_replay(data: st.DataObject) -> None:
    """advance(): the state, evaluated days after its last event, equals a batch at that time."""
    rules, contact, events = _drawn(data)
    days = data.draw(st.integers(0, 200))
    engine = leaddsl.Engine(rules)
    engine.load(contacts=[contact])
    engine.ingest_many(events)
    when = datetime(2026, 9, 1, tzinfo=UTC).timestamp() + days * 86400.0
    engine.advance(when)
    _assert_same(_plain(engine.contact(contact["id"])),
                 _plain(rules.score(contact, events, as_of=when)))


# ---- ingest ------------------------------------------------------------------------------------

RULES = """
score engagement:
    when visited page any: +10
    when visited page "pricing": +25
    when unsubscribed: -50
    decay half-life 30 days
score fit:
    when role = "decision maker": +10
disqualify "unsubscribed" when unsubscribed
qualify when engagement >= 30 and visited pricing
classify band:
    hot  when engagement >= 30
    warm when engagement >= 10
    cold otherwise

account:
    score engagement = sum of contacts by engagement
    classify tier:
        target when score >= 40
        watch  otherwise
    rollup to parent: sum
"""


def visit(
    cid: str, n: int, day: int, name: str = "blog", action: str = "visited"
) -> dict[str, Any]:
    return {"id": f"{cid}-{n}", "contact": cid, "action": action, "object": "page", "name": name,
            "at": f"2026-03-{day:02d}T09:00:00Z"}


@pytest.fixture
def engine() -> leaddsl.Engine:
    eng = leaddsl.Engine(RULES)
    eng.load(accounts=[{"id": "group"}, {"id": "acme", "parent": "group"}],
             contacts=[{"id": "c1", "account": "acme", "role": "decision maker"},
                       {"id": "c2", "account": "acme"}, {"id": "c3"}])
    return eng


def test_ingest_reflects_the_event_at_once(engine: leaddsl.Engine) -> None:
    engine.ingest(visit("c1", 1, 1))
    assert engine.contact("c1").scores["engagement"] == 10
    assert engine.account("group").total == 10
    engine.ingest(visit("c2", 1, 1, "pricing"))
    assert engine.account("acme").total == 35
    assert engine.account("group").total == 35


def test_triggers_fire_once_both_ways_and_again(engine: leaddsl.Engine) -> None:
    seen: list[leaddsl.Transition] = []
    engine.on("qualified", seen.append)
    engine.on("label_changed", seen.append, label="band")
    engine.on("label_changed", seen.append, label="tier", subject="account")

    def changes() -> list[tuple[str, str, object, object]]:
        out = [(t.kind, t.id, t.before, t.after) for t in seen]
        seen.clear()
        return out

    engine.ingest(visit("c1", 1, 1, "pricing"))  # 25: warm
    assert changes() == [("label_changed", "c1", "cold", "warm")]
    assert engine.ingest(visit("c1", 1, 1, "pricing")) == ()  # the same event again
    fired = engine.ingest(visit("c1", 2, 1))  # 35: hot, and qualified
    assert changes() == [("qualified", "c1", False, True), ("label_changed", "c1", "warm", "hot")]
    assert all(t.cause == "c1-2" and t.subject == "contact" for t in fired)
    engine.ingest(visit("c1", 3, 1))  # 45: no crossing for c1, but its accounts reach 40
    assert changes() == [("label_changed", "acme", "watch", "target"),
                         ("label_changed", "group", "watch", "target")]
    engine.ingest(visit("c1", 4, 1))  # 55: no crossing anywhere
    assert changes() == []
    engine.ingest(visit("c1", 5, 1, action="unsubscribed"))  # disqualified: everything drops
    assert changes() == [("qualified", "c1", True, False), ("label_changed", "c1", "hot", "cold"),
                         ("label_changed", "acme", "target", "watch"),
                         ("label_changed", "group", "target", "watch")]
    for n, name in ((1, "pricing"), (2, "blog"), (3, "blog")):  # c2: 25, 35, 45
        engine.ingest(visit("c2", n, 2, name))
    assert changes() == [
        ("label_changed", "c2", "cold", "warm"),
        ("qualified", "c2", False, True),
        ("label_changed", "c2", "warm", "hot"),
        ("label_changed", "acme", "watch", "target"),
        ("label_changed", "group", "watch", "target"),
    ]


def test_first_transition_is_relative_to_the_state_before(engine: leaddsl.Engine) -> None:
    fired = engine.ingest(visit("c3", 1, 1))
    assert [(t.kind, t.name, t.before, t.after) for t in fired] == [
        ("label_changed", "band", "cold", "warm")]
    assert fired[0].as_of == datetime(2026, 3, 1, 9, tzinfo=UTC)


def test_advance_lets_decay_fire_and_goes_forward_only(engine: leaddsl.Engine) -> None:
    engine.ingest(visit("c1", 1, 1, "pricing"))
    engine.ingest(visit("c1", 2, 1))
    assert engine.contact("c1").labels["band"] == "hot"  # 35
    fired = engine.advance("2026-05-15T09:00:00Z")  # 75 days, 2.5 half-lives: 35 -> 6.2
    mine = [(t.kind, t.before, t.after, t.cause) for t in fired if t.id == "c1"]
    assert mine == [("qualified", True, False, None), ("label_changed", "hot", "cold", None)]
    assert engine.contact("c1").scores["engagement"] == pytest.approx(35 * 2 ** -2.5)
    assert engine.as_of == datetime(2026, 5, 15, 9, tzinfo=UTC)
    assert engine.advance("2026-05-15T09:00:00Z") == ()  # nothing new
    with pytest.raises(leaddsl.LeadDSLError, match="goes forward only"):
        engine.advance("2026-03-01T00:00:00Z")


def test_bad_events_name_the_field_and_collect_keeps_them(engine: leaddsl.Engine) -> None:
    with pytest.raises(leaddsl.RecordError) as info:
        engine.ingest({"id": "x", "contact": "zz", "action": "visited", "at": "2026-03-01"})
    assert (info.value.field, info.value.record_id) == ("contact", "x")
    with pytest.raises(leaddsl.RecordError, match="field 'at'"):
        engine.ingest({"id": "y", "contact": "c1", "action": "visited", "at": "soon"})
    report = engine.ingest_many([visit("c1", 1, 1), {"contact": "c1", "at": "2026-03-01"},
                                 visit("c1", 1, 1), {"contact": "c1", "action": 3, "at": "x"}],
                                errors="collect")
    assert (report.events, report.duplicates) == (1, 1)
    assert [r.source for r in report.rejected] == ["events[1]", "events[3]"]
    assert "missing action" in report.rejected[0].reason


def test_auto_contacts_creates_the_contact() -> None:
    eng = leaddsl.Engine(RULES, auto_contacts=True)
    eng.ingest(visit("new", 1, 1))
    assert eng.contact("new").total == 10 and eng.orphans() == ["new"]


def test_ingest_many_reads_ndjson_and_names_bad_lines(engine: leaddsl.Engine,
                                                      tmp_path: Any) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(orjson.dumps(visit("c1", 1, 1)) + b"\n{not json\n"
                     + orjson.dumps(visit("c2", 1, 1)) + b"\n")
    report = engine.ingest_many(path, errors="collect")
    assert report.events == 2
    assert [r.source for r in report.rejected] == [f"{path}:2"]


# ---- adjustments -------------------------------------------------------------------------------


def test_adjust_is_explained_and_adds_up(engine: leaddsl.Engine) -> None:
    engine.ingest(visit("c1", 1, 1))
    fired = engine.adjust("c1", 15, "met at the trade fair", model="engagement")
    assert engine.contact("c1").scores["engagement"] == 25
    rows = engine.contact("c1").explain()
    assert rows[-1].kind == "adjustment"
    assert rows[-1].rule == "adjusted by hand: met at the trade fair"
    assert sum(r.points for r in rows) == pytest.approx(engine.contact("c1").total)
    assert [(t.name, t.after) for t in fired if t.subject == "contact"] == [("band", "warm")] or \
        [(t.name, t.after) for t in fired if t.subject == "contact"] == []
    engine.adjust("acme", 30, "strategic logo", id="adj-1")
    engine.adjust("acme", 30, "strategic logo", id="adj-1")  # the same adjustment again
    assert engine.account("acme").total == 25 + 30
    assert engine.account("group").total == 25 + 30
    assert engine.account("group").explain()[-1].account == "acme"


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    (("c1", 5, "x"), {"model": "nope"}, "unknown model 'nope'"),
    (("c1", 5, " "), {}, "needs a reason"),
    (("zz", 5, "x"), {}, "no contact or account 'zz'"),
    (("c1", "5", "x"), {}, "points must be a number"),
])
def test_bad_adjustments_are_refused(engine: leaddsl.Engine, args: tuple[Any, ...],
                                     kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(leaddsl.LeadDSLError, match=message):
        engine.adjust(*args, **kwargs)


def test_trigger_registration_is_checked(engine: leaddsl.Engine) -> None:
    with pytest.raises(leaddsl.LeadDSLError, match="unknown trigger 'qualify'"):
        engine.on("qualify", print)
    with pytest.raises(leaddsl.LeadDSLError, match="no ladder 'bnad'"):
        engine.on("label_changed", print, label="bnad")
    with pytest.raises(leaddsl.LeadDSLError, match="label= applies"):
        engine.on("qualified", print, label="band")
    seen: list[Any] = []
    engine.on("label_changed", seen.append)
    engine.off(seen.append)
    engine.ingest(visit("c3", 1, 1))
    assert seen == []


def test_without_transitions_ingest_only_scores() -> None:
    eng = leaddsl.Engine(RULES, transitions=False)
    eng.load(accounts=[{"id": "acme"}], contacts=[{"id": "c1", "account": "acme"}])
    assert eng.ingest(visit("c1", 1, 1, "pricing")) == ()
    assert eng.ingest(visit("c1", 2, 1)) == ()  # would have qualified c1
    assert eng.contact("c1").qualified and eng.account("acme").total == 35
    assert eng.advance("2026-06-01T00:00:00Z") == ()
    with pytest.raises(leaddsl.LeadDSLError, match="transitions=False"):
        eng.on("qualified", print)


def test_impossible_times_and_wrong_shapes_are_record_errors(engine: leaddsl.Engine) -> None:
    for at in (1e18, -1e18, "0001-01-01T00:00:00+05:00"):
        with pytest.raises(leaddsl.RecordError, match="outside the times a date can hold"):
            engine.ingest({"id": "x", "contact": "c1", "action": "visited", "at": at})
    engine.ingest(visit("c1", 1, 1))  # the engine carries on
    assert engine.contact("c1").scores["engagement"] == 10 and engine.events == 1
    with pytest.raises(leaddsl.LeadDSLError, match="must be records"):
        engine.ingest_many(visit("c1", 2, 1))  # type: ignore[arg-type]
    with pytest.raises(leaddsl.LeadDSLError, match="must be records"):
        engine.ingest_many(None)  # type: ignore[arg-type]
    with pytest.raises(leaddsl.LeadDSLError, match="no ladder 'nope'"):
        engine.top_contacts(where={"nope": "x"})
    with pytest.raises(leaddsl.LeadDSLError, match="one condition on one line"):
        engine.top_contacts(where="score >= 1; qualify when score > 2")


@LIVE
@given(st.data())
def test_a_state_built_at_once_equals_one_built_event_by_event(data: st.DataObject) -> None:
    """LiveRules.build (how an engine makes a contact's first summary from its log) gives the
    state that adding the events one by one gives: the same results at the latest event and
    later, and the same firsts, counts and windows."""
    rules, contact, events = _drawn(data)
    events = _unique(events)
    live = LiveRules(rules)
    one_by_one = _state(live, events)
    parsed = []
    for i, ev in enumerate(events):
        rec = leaddsl.records.check_event(ev, f"events[{i}]")
        parsed.append((rec.at, rec.id or f"events[{i}]", (rec.action, rec.object, rec.name)))
    at_once = live.build(parsed)
    assert at_once.top == one_by_one.top
    assert at_once.counts == one_by_one.counts
    top = at_once.top

    def inside(times: list[Any], window: float | None) -> list[Any]:
        # Event by event, a window drops old events only once the oldest it holds is out.
        if window is None or top is None:
            return sorted(times)
        return sorted(x for x in times if top - (x[0] if isinstance(x, tuple) else x) <= window)

    windows = live._counter_window
    assert [inside(t, w) for t, w in zip(at_once.times, windows, strict=True)] == [
        inside(t, w) for t, w in zip(one_by_one.times, windows, strict=True)
    ]
    for i, (a, b) in enumerate(zip(at_once.rules, one_by_one.rules, strict=True)):
        if isinstance(a, list) and a and isinstance(a[0], tuple):  # a window's events
            assert inside(a, live._horizon[i]) == inside(b, live._horizon[i])
        elif isinstance(a, list) and len(a) == 3:  # a decayed sum: the same floats exactly
            assert a == b
        else:
            assert a == b
    attrs_ = leaddsl.records.check_contact(contact, "contact", rules.plan.numeric_attributes)
    for later in (0.0, 86400.0 * 3):
        when = None if at_once.top is None else at_once.top + later
        _assert_same(_plain(live.result(attrs_, at_once, when)),
                     _plain(live.result(attrs_, one_by_one, when)))


def test_states_from_the_same_data_do_not_share_their_sums() -> None:
    """Sums are updated in place: from_data and to_data copy them."""
    rules = leaddsl.compile("when opened email: +1\nwhen visited page any: +2\n"
                            "qualify when visited page within 3 days")
    live = LiveRules(rules)
    st_ = live.new()
    live.add(st_, 100.0, "e1", ("opened", "email", None))
    live.add(st_, 150.0, "e2", ("visited", "page", None))
    data = st_.to_data()
    a, b = ContactState.from_data(data), ContactState.from_data(data)
    live.add(a, 200.0, "e3", ("opened", "email", None))
    live.add(a, 210.0, "e4", ("visited", "page", None))
    assert b.to_data() == data
    assert ContactState.from_data(data).to_data() == data
    live.add(st_, 300.0, "e5", ("visited", "page", None))
    assert data[1][0] == [1] and data[3] == [[150.0]]
