"""The command line through a real subprocess: exit codes, outputs, errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

RULES = """\
score engagement:
    when opened email: +1 limit 3
    when visited pricing: +15
score fit:
    when employees >= 200: +10
classify band:
    hot when engagement >= 15
    cold otherwise
qualify when score >= 20 and visited pricing
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leaddsl", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write_data(tmp: Path, events: list[dict[str, object]]) -> None:
    (tmp / "rules.lead").write_text(RULES)
    (tmp / "contacts.ndjson").write_bytes(
        b"".join(
            orjson.dumps(c) + b"\n"
            for c in [{"id": "c1", "employees": 500}, {"id": "c2", "employees": 20}]
        )
    )
    (tmp / "events.ndjson").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))


EVENTS = [
    {
        "id": "e1",
        "contact": "c1",
        "at": "2026-01-01T00:00:00Z",
        "action": "visited",
        "object": "page",
        "name": "pricing",
    },
    {
        "id": "e2",
        "contact": "c2",
        "at": "2026-01-01T00:00:00Z",
        "action": "opened",
        "object": "email",
    },
]


def test_score_json_orders_by_total(tmp_path: Path) -> None:
    write_data(tmp_path, EVENTS)
    proc = run(
        "score",
        "rules.lead",
        "--contacts",
        "contacts.ndjson",
        "--events",
        "events.ndjson",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    rows = orjson.loads(proc.stdout)
    assert [(r["id"], r["total"], r["qualified"]) for r in rows] == [
        ("c1", 25.0, True),
        ("c2", 1.0, False),
    ]
    assert rows[0]["labels"] == {"band": "hot"}


def test_score_table_and_top(tmp_path: Path) -> None:
    write_data(tmp_path, EVENTS)
    proc = run(
        "score",
        "rules.lead",
        "--contacts",
        "contacts.ndjson",
        "--events",
        "events.ndjson",
        "--top",
        "1",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.splitlines()
    assert header.split() == [
        "rank",
        "id",
        "total",
        "engagement",
        "fit",
        "band",
        "qualified",
        "disqualified",
    ]
    assert row.split() == ["1", "c1", "25.0", "15.0", "10.0", "hot", "yes"]


def test_explain_lists_rules_and_missing_terms(tmp_path: Path) -> None:
    write_data(tmp_path, EVENTS)
    proc = run(
        "explain",
        "rules.lead",
        "--contacts",
        "contacts.ndjson",
        "--events",
        "events.ndjson",
        "--contact",
        "c2",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "line 2: when opened email: +1 limit 3" in proc.stdout
    assert "[ ] visited pricing" in proc.stdout


def test_check_reports_with_caret_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "bad.lead").write_text(
        "classify band:\n    hot when engagment >= 1\n"
        "    cold otherwise\nscore engagement:\n"
        "    when opened email: +1\n"
    )
    proc = run("check", "bad.lead", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "bad.lead:2:14: error: unknown score model 'engagment'",
        "  2 |     hot when engagment >= 1",
        "    |              ^^^^^^^^^ did you mean 'engagement'?",
    ]


def test_check_warnings_fail_only_when_strict(tmp_path: Path) -> None:
    (tmp_path / "w.lead").write_text("when opened email: +1\nwhen opened email: +1\n")
    assert run("check", "w.lead", cwd=tmp_path).returncode == 0
    strict = run("check", "--strict", "w.lead", cwd=tmp_path)
    assert strict.returncode == 1
    assert "warning: same event pattern as line 1" in strict.stdout


def test_bad_record_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    write_data(tmp_path, [{**EVENTS[0], "at": "yesterday"}])
    proc = run(
        "score",
        "rules.lead",
        "--contacts",
        "contacts.ndjson",
        "--events",
        "events.ndjson",
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        "leaddsl: events.ndjson:1 (id 'e1'), field 'at': cannot read "
        "'yesterday' as an ISO 8601 time\n"
    )


def test_collect_sets_bad_records_aside_and_reports_each(tmp_path: Path) -> None:
    write_data(
        tmp_path,
        [
            {**EVENTS[0], "at": "yesterday"},
            EVENTS[1],
            {**EVENTS[1], "id": "e3", "contact": "ghost"},
        ],
    )
    proc = run(
        "score",
        "rules.lead",
        "--contacts",
        "contacts.ndjson",
        "--events",
        "events.ndjson",
        "--errors",
        "collect",
        "--format",
        "ndjson",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "leaddsl: set aside events.ndjson:1 (id 'e1'), field 'at': cannot read 'yesterday' as "
        "an ISO 8601 time",
        "leaddsl: set aside events.ndjson:3 (id 'e3'), field 'contact': unknown contact 'ghost'",
    ]
    assert len(proc.stdout.splitlines()) == 2


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    proc = run("score", "nope.lead", "--contacts", "c.ndjson", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == (
        "leaddsl: cannot read rule script 'nope.lead': No such file or directory\n"
    )


ACCOUNT_RULES = RULES + """
account:
    score engagement = sum of contacts by engagement
    score fit:
        when industry = "software": +5
    classify tier:
        target when score >= 15
        watch otherwise
    rollup to parent: sum
"""


def write_accounts(tmp: Path) -> None:
    write_data(tmp, EVENTS)
    (tmp / "rules.lead").write_text(ACCOUNT_RULES)
    (tmp / "contacts.ndjson").write_bytes(
        b'{"id": "c1", "employees": 500, "account": "sub"}\n'
        b'{"id": "c2", "employees": 20, "email": "bo@group.com"}\n'
        b'{"id": "c3", "email": "cy@gmail.com"}\n'
    )
    (tmp / "accounts.ndjson").write_bytes(
        b'{"id": "group", "domains": ["group.com"], "industry": "Software"}\n'
        b'{"id": "sub", "parent": "group"}\n'
    )


def test_score_prints_accounts_after_contacts(tmp_path: Path) -> None:
    write_accounts(tmp_path)
    proc = run("score", "rules.lead", "--contacts", "contacts.ndjson", "--events",
               "events.ndjson", "--accounts", "accounts.ndjson", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    contacts, accounts = proc.stdout.split("\n\n")
    assert contacts.splitlines()[1].split()[:3] == ["1", "c1", "25.0"]
    head, first, second = accounts.splitlines()
    assert head.split() == ["rank", "id", "total", "engagement", "fit", "tier", "qualified",
                            "disqualified", "parent", "contacts"]
    # group: its own 1 (c2 by domain) + 5 fit + sub's 15: 21; sub: c1's 15.
    assert first.split() == ["1", "group", "21.0", "16.0", "5.0", "target", "1"]
    assert second.split() == ["2", "sub", "15.0", "15.0", "0.0", "target", "group", "1"]


def test_score_accounts_only_as_json(tmp_path: Path) -> None:
    write_accounts(tmp_path)
    proc = run("score", "rules.lead", "--contacts", "contacts.ndjson", "--events",
               "events.ndjson", "--accounts", "accounts.ndjson", "--accounts-only",
               "--format", "json", "--top", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (group,) = orjson.loads(proc.stdout)
    assert (group["id"], group["total"], group["subsidiaries"]) == ("group", 21.0, ["sub"])
    assert group["eligible"] == ["c2"]


def test_explain_an_account_names_the_contacts(tmp_path: Path) -> None:
    write_accounts(tmp_path)
    proc = run("explain", "rules.lead", "--contacts", "contacts.ndjson", "--events",
               "events.ndjson", "--accounts", "accounts.ndjson", "--account", "group",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("group: 21.00 points")
    assert "subsidiaries: sub" in out
    lines = [line.split() for line in out.splitlines() if line.strip().startswith("+")]
    assert [(w[0], w[1]) for w in lines] == [("+1.00", "group"), ("+5.00", "group"),
                                            ("+15.00", "sub")]
    assert "[c2 1]" in out and "[c1 15]" in out


def test_accounts_without_an_account_block_is_one_line(tmp_path: Path) -> None:
    write_accounts(tmp_path)
    (tmp_path / "rules.lead").write_text(RULES)
    proc = run("score", "rules.lead", "--contacts", "contacts.ndjson", "--accounts-only",
               cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == "leaddsl: rules.lead has no account block, so accounts have no scores\n"
    proc = run("explain", "rules.lead", "--contacts", "contacts.ndjson", "--accounts",
               "accounts.ndjson", "--account", "nope", cwd=tmp_path)
    assert proc.returncode == 1 and "no account block" in proc.stderr


def test_a_parent_cycle_is_one_line(tmp_path: Path) -> None:
    write_accounts(tmp_path)
    (tmp_path / "accounts.ndjson").write_bytes(
        b'{"id": "group", "parent": "sub"}\n{"id": "sub", "parent": "group"}\n')
    proc = run("score", "rules.lead", "--contacts", "contacts.ndjson", "--accounts",
               "accounts.ndjson", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("leaddsl: accounts form a parent cycle: ")
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_where_filters_in_the_rule_language(tmp_path: Path) -> None:
    write_accounts(tmp_path)
    base = ["score", "rules.lead", "--contacts", "contacts.ndjson", "--events", "events.ndjson",
            "--accounts", "accounts.ndjson", "--format", "json"]
    proc = run(*base, "--where", 'band = "hot" and visited pricing', cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [r["id"] for r in orjson.loads(proc.stdout)] == ["c1"]
    # A filter on events the script never counts gets them counted.
    proc = run(*base, "--where", "opened email at least 1 time", cwd=tmp_path)
    assert [r["id"] for r in orjson.loads(proc.stdout)] == ["c2"]
    proc = run(*base, "--accounts-only", "--where", 'tier = "target" and parent is missing',
               cwd=tmp_path)
    assert [r["id"] for r in orjson.loads(proc.stdout)] == ["group"]


def test_a_bad_where_is_a_diagnostic_on_the_filter(tmp_path: Path) -> None:
    write_accounts(tmp_path)
    proc = run("score", "rules.lead", "--contacts", "contacts.ndjson", "--where",
               'band = "hott"', cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == (
        "--where:1:8: error: 'band' has no label 'hott' (its labels: hot, cold)\n"
        '  1 | band = "hott"\n'
        '    |        ^^^^^^ did you mean "hot"?\n'
    )


def test_sales_view_shows_priorities_and_reasons_not_points(tmp_path: Path) -> None:
    write_accounts(tmp_path)
    proc = run("sales-view", "rules.lead", "--contacts", "contacts.ndjson", "--events",
               "events.ndjson", "--accounts", "accounts.ndjson", "--format", "json",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = orjson.loads(proc.stdout)
    assert [r["id"] for r in rows] == ["c1", "c2", "c3"]
    first = rows[0]
    assert first["band"] == "hot" and first["status"] == "qualified"
    assert first["why"] == 'visited pricing; employees >= 200'
    assert not any(isinstance(v, float) for row in rows for v in row.values())
    assert rows[1]["missing"] == "score >= 20; visited pricing"
    proc = run("sales-view", "rules.lead", "--contacts", "contacts.ndjson", "--events",
               "events.ndjson", "--accounts", "accounts.ndjson", "--accounts-only",
               cwd=tmp_path)
    assert proc.returncode == 0 and "group" in proc.stdout and "(c1)" in proc.stdout


def test_progress_shows_on_a_terminal_only() -> None:
    import io

    from leaddsl.cli import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        progress = Progress(stream, delay=0.0)
        progress("events read", 20_000)
        progress.done()
    assert tty.getvalue() == "\revents read: 20,000...\033[K\r\033[K"
    assert pipe.getvalue() == ""


def test_a_reader_that_stops_early_gets_no_error(tmp_path: Path) -> None:
    """`leaddsl … | head -1`: the closed pipe is the reader's choice, not a mistake to report."""
    # Output far larger than a pipe's buffer, and its reader gone.
    (tmp_path / "rules.lead").write_text("when opened email: +1\n")
    (tmp_path / "contacts.ndjson").write_text("".join(f'{{"id": "c{i}"}}\n'
                                                      for i in range(20_000)))
    with subprocess.Popen([sys.executable, "-m", "leaddsl", "score", "rules.lead",
                           "--contacts", "contacts.ndjson", "--format", "ndjson"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # gone before the first line is written, as `| true` is
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0
    assert err == ""
