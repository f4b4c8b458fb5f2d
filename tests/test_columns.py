"""Bulk loading by columns (leaddsl/columns.py) is a speed path only: an engine loaded with it
holds exactly what the record-by-record path gives, and names the same bad records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import leaddsl
import leaddsl.columns
import leaddsl.engine

RULES = leaddsl.compile("when visited page any: +1\nwhen opened email: +2\n")
CONTACTS = [{"id": "c1"}, {"id": "c2"}, {"id": "c3"}]

# Mostly plain events; now and then something the columns must decline.
PLAIN = st.fixed_dictionaries(
    {
        "id": st.sampled_from([f"e{i}" for i in range(12)]),
        "contact": st.sampled_from(["c1", "c2", "c3"]),
        "action": st.sampled_from(["visited", "opened"]),
        "at": st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-02T12:00:00+02:00",
                               "2026-01-03T00:00:00", "2026-01-02T23:59:59.123456-05:30",
                               "2026-01-01T12:00:00.5Z", "2026-02-30T00:00:00Z",
                               # 20 characters ending in Z: arrow reads them without a pattern
                               "2026-01-01 12:00:00Z", "2026-13-01T00:00:00Z",
                               "2026-01-01T24:00:00Z", "2026-01-01T12:00:60Z",
                               "0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z",
                               "2026-01-01T1:00:00ZZ", "2026-01-01X12:00:00Z",
                               "20260101T120000Z", "2026-01-01T12:00:00z"]),
    },
    optional={
        "object": st.sampled_from(["page", "email"]),
        "name": st.sampled_from(["pricing", "n1"]),
        "channel": st.sampled_from(["web", "email"]),
    },
)
ODD = st.one_of(
    PLAIN.map(lambda e: {**e, "id": 7}),  # an int id is an id too
    PLAIN.map(lambda e: {k: v for k, v in e.items() if k != "id"}),  # no id
    PLAIN.map(lambda e: {**e, "contact": "nobody"}),
    PLAIN.map(lambda e: {**e, "at": "yesterday"}),
    PLAIN.map(lambda e: {**e, "channel": 5}),
    PLAIN.map(lambda e: {**e, "action": ""}),
    PLAIN.map(lambda e: {**e, "at": 1767225600}),  # epoch seconds
    PLAIN.map(lambda e: {**e, "at": None}),
    # Values the columns share or look up before checking their types:
    PLAIN.map(lambda e: {**e, "contact": ["c1"]}),  # not hashable
    PLAIN.map(lambda e: {**e, "contact": 1}),
    PLAIN.map(lambda e: {**e, "action": ["opened"]}),
    PLAIN.map(lambda e: {**e, "action": True}),
    PLAIN.map(lambda e: {**e, "object": {"page": 1}}),
    PLAIN.map(lambda e: {**e, "name": 1}),
    st.just(["not", "an", "object"]),
)
EVENTS = st.lists(st.one_of(PLAIN, PLAIN, PLAIN, ODD), max_size=30)
# Only in memory (no JSON for them): times that arrow sees before Python checks their types.
IN_MEMORY = st.lists(st.one_of(
    PLAIN, PLAIN, PLAIN, ODD,
    PLAIN.map(lambda e: {**e, "at": b"2026-01-01T00:00:00Z"}),  # arrow reads bytes as binary
    PLAIN.map(lambda e: {**e, "at": datetime(2026, 1, 1, tzinfo=UTC)}),  # a time, not text
), max_size=30)


def _snapshot(engine: leaddsl.Engine, report: leaddsl.engine.LoadReport) -> dict[str, Any]:
    return {
        "events": {cid: list(evs) for cid, evs in engine._events.items()},
        "count": report.events,
        "duplicates": report.duplicates,
        "rejected": [(r.source, r.reason) for r in report.rejected],
        "as_of": engine.as_of,
        "totals": {r.id: r.total for r in engine.contacts()},
    }


def _load(monkeypatch: pytest.MonkeyPatch, columns: bool, events: list[Any],
          chunk: int) -> dict[str, Any]:
    with monkeypatch.context() as m:
        m.setattr(leaddsl.columns, "CHUNK", chunk)
        m.setattr(leaddsl.columns, "ARROW_TIMES", 1)  # arrow parses the times of every chunk
        if not columns:
            m.setattr(leaddsl.engine, "plain_columns", lambda *args: None)
        engine = leaddsl.Engine(RULES)
        engine.load(contacts=CONTACTS)
        report = engine.load(events=events, errors="collect")
        return _snapshot(engine, report)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(events=IN_MEMORY, chunk=st.sampled_from([1, 4, 64]))
def test_columns_give_what_records_give(monkeypatch: pytest.MonkeyPatch, events: list[Any],
                                        chunk: int) -> None:
    assert _load(monkeypatch, True, events, chunk) == _load(monkeypatch, False, events, chunk)


# Lines of an NDJSON file: events as above, and lines the typed reader must hand to orjson.
LINES = st.lists(
    st.one_of(
        EVENTS.map(lambda evs: [orjson.dumps(e) for e in evs]),
        st.sampled_from([
            [b""],  # blank
            [b"{not json"],
            [b'{"id": "x1", "contact": "c1", "action": "opened", "at": "2026-01-01T00:00:00Z",'
             b' "extra": 1e400}'],  # not JSON for orjson, in a field leaddsl does not read
            [b'{"id": "x2", "contact": "c2", "action": "opened", "at": "2026-01-01T00:00:00Z",'
             b' "utm": "spring"}'],  # another field: allowed
            [b'{"id": "x3", "contact": "c1", "action": "visited", "object": null,'
             b' "at": "2026-01-04T00:00:00Z", "id": "x4"}'],  # a repeated key: the last wins
            [b'{"id": "x5", "contact": "c1",', b'"action": "opened", "at": "2026-01-01"}'],
            [b'{"id": "x6", "contact": "c2", "action": "opened", "at": "2026-01-01"}'
             b'{"id": "x7", "contact": "c2", "action": "opened", "at": "2026-01-01"}'],
            [b'{"id": "x8", "contact": "c3", "action": "opened", "at": "2026-01-01",'
             b' "channel": "\xff"}'],  # not UTF-8
            [b'{"id": "x9", "contact": "c3", "action": "opened", "at": "2026-01-01",'
             b' "name": "\\ud800"}'],  # a lone surrogate
            [b'{"id": "y1", "contact": "c3", "action": "opened", "at": "2026-01-01"}\r'],
            [b'  {"id": "y2", "contact": "c3", "action": "opened", "at": "2026-01-01"}'],
            [b'{"id": "y3", "contact": "c3", "action": "opened", "object": 5, "at": "2026-01-01"}'],
            [b'{"id": "y4", "contact": "c3", "action": "opened", "object": "a\\nb\\u00e9",'
             b' "at": "2026-01-01T00:00:00.123456789+05:30"}'],
        ]),
    ),
    max_size=6,
).map(lambda parts: [line for part in parts for line in part])


def _load_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, typed: bool, lines: list[bytes],
               chunk: int) -> dict[str, Any]:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines) + (b"\n" if chunk != 200 else b""))
    with monkeypatch.context() as m:
        m.setattr(leaddsl.columns, "_LINE_BYTES", chunk)
        if not typed:
            m.setattr(leaddsl.columns, "_arrow", lambda: None)
        engine = leaddsl.Engine(RULES)
        engine.load(contacts=CONTACTS)
        report = engine.load(events=path, errors="collect")
        return _snapshot(engine, report)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(lines=LINES, chunk=st.sampled_from([1, 200, 1 << 20]))
def test_typed_reading_gives_what_dicts_give(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             lines: list[bytes], chunk: int) -> None:
    """Event files read by columns (pyarrow) and as dicts (orjson) load the same events,
    counts, rejections (named by line) and totals, whatever the block size."""
    assert leaddsl.columns._arrow() is not None  # the tests install every extra
    assert (_load_file(monkeypatch, tmp_path, True, lines, chunk)
            == _load_file(monkeypatch, tmp_path, False, lines, chunk))


def test_a_plain_file_is_read_typed(tmp_path: Path) -> None:
    lines = [orjson.dumps({"id": f"e{i}", "contact": "c2", "action": "visited", "object": "page",
                           "at": "2026-01-01T00:00:00Z"}) for i in range(4)]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    [chunk] = leaddsl.columns.chunks(path, "events", typed=True)
    assert chunk.table is not None and chunk.size == 4 and chunk.records == []
    assert [r["id"] for r in chunk.as_dicts().records] == ["e0", "e1", "e2", "e3"]
    assert chunk.name_of(2) == f"{path}:3"
    engine = leaddsl.Engine(RULES)
    assert engine.load(contacts=CONTACTS, events=path).events == 4
    assert engine.contact("c2").total == 4.0


def test_a_plain_history_takes_the_column_path(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[int] = []
    real = leaddsl.columns.plain_columns

    def spy(*args: Any) -> Any:
        out = real(*args)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(leaddsl.engine, "plain_columns", spy)
    engine = leaddsl.Engine(RULES)
    engine.load(contacts=CONTACTS)
    engine.load(events=[{"id": f"e{i}", "contact": "c1", "action": "opened", "object": "email",
                         "at": "2026-01-01T00:00:00Z"} for i in range(10)])
    assert taken == [True]
    assert engine.contact("c1").total == 20.0


def test_a_bad_line_in_a_file_is_named_by_its_line(tmp_path: Path) -> None:
    lines = [orjson.dumps({"id": f"e{i}", "contact": "c1", "action": "opened",
                           "object": "email", "at": "2026-01-01T00:00:00Z"}) for i in range(5)]
    lines.insert(3, b"")  # blank: skipped
    lines.insert(4, b'{"id": "bad", "contact": "c1", "action": "opened", "at": "soon"}')
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    engine = leaddsl.Engine(RULES)
    engine.load(contacts=CONTACTS)
    with pytest.raises(leaddsl.RecordError) as err:
        engine.load(events=path)
    assert err.value.source == f"{path}:5" and err.value.field == "at"
    # The records before it stay loaded, and the as-of time follows them.
    assert engine.events == 3 and engine.contact("c1").total == 6.0
    report = engine.load(events=path, errors="collect")
    assert [r.source for r in report.rejected] == [f"{path}:5"]
    assert report.duplicates == 3 and engine.events == 5


def test_a_line_that_is_not_json_keeps_the_lines_before_it(tmp_path: Path) -> None:
    good = orjson.dumps({"id": "e1", "contact": "c1", "action": "opened", "object": "email",
                         "at": "2026-01-01T00:00:00Z"})
    stranger = orjson.dumps({"id": "e2", "contact": "nobody", "action": "opened",
                             "at": "2026-01-01T00:00:00Z"})
    path = tmp_path / "events.ndjson"
    path.write_bytes(good + b"\n{not json\n")
    engine = leaddsl.Engine(RULES)
    engine.load(contacts=CONTACTS)
    with pytest.raises(leaddsl.RecordError) as err:
        engine.load(events=path)
    assert err.value.source == f"{path}:2"
    assert engine.events == 1 and engine.contact("c1").total == 2.0
    path.write_bytes(stranger + b"\n{not json\n" + good + b"\n")
    report = leaddsl.Engine(RULES).load(contacts=CONTACTS, events=path, errors="collect")
    assert [r.source for r in report.rejected] == [f"{path}:1", f"{path}:2"]  # in line order
    assert report.events == 1


def test_ids_shared_between_contacts_and_names_of_unnamed_events() -> None:
    """Per-contact sequence ids ("1", "2", ...) count once per contact; the name an event
    without an id was given is not an id."""
    engine = leaddsl.Engine(RULES)
    engine.load(contacts=CONTACTS)
    events = [{"id": str(i), "contact": c, "action": "opened", "object": "email",
               "at": "2026-01-01T00:00:00Z"} for c in ("c1", "c2") for i in range(300)]
    report = engine.load(events=events + events[:5])
    assert (report.events, report.duplicates) == (600, 5)
    engine.load(events=[{"contact": "c3", "action": "opened", "object": "email",
                         "at": "2026-01-01T00:00:00Z"}])  # named events[0] inside
    engine.load(events=[{"id": "events[0]", "contact": "c2", "action": "opened",
                         "object": "email", "at": "2026-01-01T00:00:00Z"}])
    report = engine.load(events=[{"id": "events[0]", "contact": "c3", "action": "opened",
                                  "object": "email", "at": "2026-01-01T00:00:00Z"}])
    assert (report.events, report.duplicates) == (1, 0)
    assert engine.contact("c3").total == 4.0


def test_a_block_is_read_by_columns_only_when_each_line_is_one_event() -> None:
    from leaddsl.arrowread import read_block

    one = b'{"id": "a", "contact": "c1", "action": "opened", "at": "2026-01-01"}'
    assert read_block(one + b"\n" + one.replace(b'"a"', b'"b"') + b"\n", 2) is not None
    # An object over two lines and two objects on one line: as many rows as lines, but
    # not one per line.
    split = one.replace(b', "action"', b',\n"action"')
    assert read_block(split + b"\n" + one + one + b"\n", 3) is None
    assert read_block(b"\n" + one + b"\n", 2) is None  # a blank line
    assert read_block(one + b"\r\n", 1) is None


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1, 1, 3), max_value=datetime(9999, 12, 29)),
    offset=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
    form=st.sampled_from(["seconds", "milliseconds", "microseconds"]),
    z=st.booleans(),
)
def test_times_read_by_arrow_equal_python_times(moment: datetime, offset: int, form: str,
                                                z: bool) -> None:
    import pyarrow as pa

    from leaddsl.arrowread import times

    zone = UTC if z else timezone(timedelta(minutes=offset))
    text = moment.replace(tzinfo=zone).isoformat(timespec=form)
    if z:
        text = text.replace("+00:00", "Z")
    got = times(pa.table({"at": [text]}))
    if got is None:  # left to Python: only where a double cannot hold the microseconds
        assert abs(datetime.fromisoformat(text).timestamp()) > 2**53 / 1e6
    else:
        assert got == [datetime.fromisoformat(text).timestamp()]


@settings(max_examples=400, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    changes=st.lists(st.tuples(st.integers(0, 18), st.sampled_from("0123456789-T:Z .+/x\u0661")),
                     max_size=2),
)
def test_twenty_character_times_are_read_as_python_reads_them(
        moment: datetime, changes: list[tuple[int, str]]) -> None:
    # Times of 20 characters ending in Z skip arrow's pattern check: whatever arrow accepts
    # there, Python reads alike, or it lies outside the years a record may hold (then the
    # column path declines the chunk and the record path names the time).
    from leaddsl.arrowread import text_times
    from leaddsl.records import MAX_TIME, MIN_TIME

    chars = list(moment.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + "Z")
    for at, char in changes:
        chars[at] = char
    text = "".join(chars)
    got = text_times([text])
    if got is None:
        return
    try:
        want = datetime.fromisoformat(text).timestamp()
    except ValueError:
        assert not MIN_TIME <= got[0] <= MAX_TIME, text
    else:
        assert got == [want], text


def test_a_time_that_is_not_unicode_text_is_named_by_the_record_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from leaddsl.arrowread import text_times

    assert text_times(["2026-01-01T00:00:00Z", "\ud800"]) is None  # arrow cannot encode it
    events = [{"id": "e1", "contact": "c1", "action": "opened", "at": "\ud800"},
              {"id": "e2", "contact": "c1", "action": "opened", "at": "2026-01-01T00:00:00Z"}]
    got = _load(monkeypatch, True, events, 64)
    assert got == _load(monkeypatch, False, events, 64)
    assert [source for source, _ in got["rejected"]] == ["events[0]"]


def test_arrow_times_of_records_take_only_text() -> None:
    """Times of records in memory reach arrow before their types are checked: anything but
    text must send the chunk back to Python's checks."""
    from leaddsl import arrowread

    good = "2026-01-01T00:00:00Z"
    assert arrowread.text_times([good, good]) == [1767225600.0] * 2
    for odd in (None, b"2026-01-01T00:00:00Z", 1767225600, 1767225600.5, True,
                datetime(2026, 1, 1, tzinfo=UTC), ["x"]):
        assert arrowread.text_times([good, odd]) is None, odd
        assert arrowread.text_times([odd, good]) is None, odd


def test_a_key_that_is_not_plain_is_not_kept_for_later_chunks() -> None:
    """shared_keys takes in only checked keys: a chunk with a bad one declines and leaves the
    shared keys as they were, so the same key in a later chunk is checked (and declined) too."""
    shared: dict[Any, Any] = {}
    good = ("opened", "email", None)
    assert leaddsl.columns.shared_keys(shared, [good, ("visited", "page", "pricing")]) == [
        good, ("visited", "page", "pricing")]
    assert list(shared) == [good, ("visited", "page", "pricing")]
    for bad in (("", None, None), (True, None, None), ("opened", 5, None),
                ("opened", None, b"x"), ("opened", ["page"], None)):
        for _ in range(2):
            assert leaddsl.columns.shared_keys(shared, [good, bad]) is None
            assert list(shared) == [good, ("visited", "page", "pricing")]
    # Equal keys come back as the one shared tuple.
    again = leaddsl.columns.shared_keys(shared, [("opened", "email", None)])
    assert again is not None and again[0] is good


def test_events_of_a_load_share_their_keys() -> None:
    """Every event with the same (action, object, name) holds the same tuple, whichever way
    it came in (columns, record by record, ingest)."""
    engine = leaddsl.Engine(RULES)
    engine.load(contacts=CONTACTS)
    plain = [{"id": f"e{i}", "contact": "c1", "action": "opened", "object": "email",
              "at": "2026-01-01T00:00:00Z"} for i in range(3)]
    engine.load(events=plain)
    engine.load(events=[{"contact": "c2", "action": "opened", "object": "email",
                         "at": 1767225600}])  # no id, epoch time: the record path
    engine.ingest({"id": "x", "contact": "c3", "action": "opened", "object": "email",
                   "at": "2026-01-02T00:00:00Z"})
    keys = {id(e[2]) for log in engine._events.values() for e in log}
    assert len(keys) == 1
    assert engine._events["c3"][0][2] == ("opened", "email", None)


class _Text(str):
    """Text whose own equality and hash the engine must never rely on."""

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other)

    __hash__ = str.__hash__


class _BadHash:
    def __hash__(self) -> int:
        raise ValueError("no hash")


def test_a_key_whose_hash_fails_leaves_the_shared_keys_as_they_were() -> None:
    shared: dict[Any, Any] = {}
    raw = [("opened", "email", None), ("b", _BadHash(), None)]
    assert leaddsl.columns.shared_keys(shared, raw) is None
    assert shared == {}


def test_text_subclasses_come_in_as_plain_text() -> None:
    """A record path event with str subclasses is taken in as plain text, so a later plain
    chunk that shares its key holds only plain str (and equal keys are one tuple)."""
    engine = leaddsl.Engine(RULES)
    engine.load(contacts=CONTACTS)
    engine.load(events=[{"id": _Text("e1"), "contact": _Text("c1"), "action": _Text("opened"),
                         "object": _Text("email"), "at": "2026-01-01T00:00:00Z"}])
    engine.load(events=[{"id": "e2", "contact": "c2", "action": "opened", "object": "email",
                         "at": "2026-01-01T00:00:00Z"}])
    (first,), (second,) = engine._events["c1"], engine._events["c2"]
    assert first[2] is second[2]
    assert {type(v) for v in (first[1], *first[2][:2])} == {str}


def test_past_the_key_limit_events_keep_their_own_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine shares at most KEYS keys; past that, events keep their own (checked) key
    tuples and score as before."""
    events = [{"id": f"e{i}", "contact": f"c{i % 3 + 1}", "action": "visited",
               "object": "page", "name": f"/p{i}", "at": "2026-01-01T00:00:00Z"}
              for i in range(40)]
    events.append({"id": "late", "contact": "c1", "action": "visited", "object": "page",
                   "name": "/p99", "at": 1767225600})  # the record path

    def load(limit: int) -> leaddsl.Engine:
        with monkeypatch.context() as m:
            m.setattr(leaddsl.columns, "KEYS", limit)
            m.setattr(leaddsl.columns, "CHUNK", 8)
            engine = leaddsl.Engine(RULES)
            engine.load(contacts=CONTACTS)
            engine.load(events=events)
            return engine

    small, large = load(10), load(1000)
    assert len(small._keys) <= 10 < len(large._keys)
    assert small._events == large._events
    assert [r.total for r in small.contacts()] == [r.total for r in large.contacts()]
