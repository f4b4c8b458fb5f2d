"""score_all: one as-of time for the run, duplicates counted once, bad records never lost."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import leaddsl

RULES = leaddsl.compile("when opened email: +1\nqualify when score >= 2\n")


def ev(
    i: int, contact: str, at: str = "2026-01-01T00:00:00Z", **extra: object
) -> dict[str, object]:
    return {
        "id": f"e{i}",
        "contact": contact,
        "at": at,
        "action": "opened",
        "object": "email",
        **extra,
    }


def test_as_of_is_the_latest_event_of_the_whole_run() -> None:
    run = leaddsl.score_all(
        RULES,
        [{"id": "a"}, {"id": "b"}],
        [ev(1, "a", "2026-01-01T00:00:00Z"), ev(2, "b", "2026-02-01T00:00:00")],
    )
    assert run.as_of is not None and run.as_of.isoformat() == "2026-02-01T00:00:00+00:00"
    assert {r.as_of for r in run.results.values()} == {run.as_of}


def test_explicit_as_of_ignores_later_events() -> None:
    run = leaddsl.score_all(
        RULES,
        [{"id": "a"}],
        [ev(1, "a", "2026-01-01"), ev(2, "a", "2026-03-01")],
        as_of="2026-02-01",
    )
    assert run.results["a"].total == 1.0


def test_same_event_id_twice_counts_once() -> None:
    run = leaddsl.score_all(RULES, [{"id": "a"}], [ev(1, "a"), ev(1, "a"), ev(2, "a")])
    assert run.results["a"].total == 2.0
    assert run.events == 2


def test_contacts_without_events_are_scored() -> None:
    run = leaddsl.score_all(RULES, [{"id": "a"}, {"id": "quiet"}], [ev(1, "a")])
    assert run.results["quiet"].total == 0.0 and not run.results["quiet"].qualified


@pytest.mark.parametrize(
    ("contacts", "events", "message"),
    [
        (
            [{"id": "a"}, {"id": "a"}],
            [],
            "contacts[1] (id 'a'), field 'id': duplicate contact id (first from contacts[0])",
        ),
        ([{"name": "x"}], [], "contacts[0], field 'id': missing id"),
        (
            [{"id": "a"}],
            [ev(1, "zz")],
            "events[0] (id 'e1'), field 'contact': unknown contact 'zz'",
        ),
        (
            [{"id": "a"}],
            [{"id": "e1", "at": "2026-01-01", "action": "opened"}],
            "events[0] (id 'e1'), field 'contact': missing contact",
        ),
    ],
)
def test_raise_mode_stops_naming_the_record(
    contacts: list[dict[str, object]], events: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(leaddsl.RecordError) as info:
        leaddsl.score_all(RULES, contacts, events)
    assert str(info.value) == message


def test_collect_mode_reports_every_bad_record_and_keeps_the_good(tmp_path: Path) -> None:
    lines = [
        orjson.dumps(ev(1, "a")),
        b"{not json",
        orjson.dumps(ev(2, "ghost")),
        orjson.dumps({**ev(3, "a"), "at": "soon"}),
        b"",
        orjson.dumps(ev(4, "a")),
    ]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    run = leaddsl.score_all(RULES, [{"id": "a"}], path, errors="collect")
    assert run.results["a"].total == 2.0
    assert [r.source for r in run.rejected] == [f"{path}:2", f"{path}:3", f"{path}:4"]
    assert "not valid JSON" in run.rejected[0].reason
    assert "unknown contact 'ghost'" in run.rejected[1].reason
    assert "cannot read 'soon'" in run.rejected[2].reason
    # Every input line is accounted for: scored, set aside, or blank.
    assert run.events + len(run.rejected) == 5


def test_top_orders_by_total_then_id_and_filters() -> None:
    run = leaddsl.score_all(
        RULES,
        [{"id": "b"}, {"id": "a"}, {"id": "c"}],
        [ev(1, "a"), ev(2, "b"), ev(3, "c"), ev(4, "c")],
    )
    assert [r.id for r in run.top(3)] == ["c", "a", "b"]
    assert [r.id for r in run.top(5, where=lambda r: r.qualified)] == ["c"]


def test_unknown_errors_policy_is_refused() -> None:
    with pytest.raises(leaddsl.LeadDSLError, match="errors must be"):
        leaddsl.score_all(RULES, [], [], errors="ignore")
