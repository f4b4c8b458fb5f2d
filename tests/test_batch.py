"""The batch backend's API: inputs of every kind, bad records, writing, to_sql, the CLI."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

import leaddsl
from leaddsl.cli import main

batch = pytest.importorskip("leaddsl.batch")
duckdb = pytest.importorskip("duckdb")

EXAMPLES = Path(__file__).parent.parent / "examples"
DATA = EXAMPLES / "data"


@pytest.fixture(scope="module")
def rules() -> leaddsl.Ruleset:
    return leaddsl.load(EXAMPLES / "rules.lead")


@pytest.fixture(scope="module")
def python_run(rules: leaddsl.Ruleset) -> leaddsl.Scored:
    return leaddsl.score_all(rules, DATA / "contacts.ndjson", DATA / "events.ndjson",
                             accounts=DATA / "accounts.ndjson", errors="collect")


def _same(rows: Any, want: dict[str, Any]) -> None:
    rows = list(rows)
    assert [r["id"] for r in rows] == list(want)
    for row in rows:
        expect = want[row["id"]].to_dict()
        assert math.isclose(row["total"], expect["total"], rel_tol=1e-9, abs_tol=1e-9)
        for m, v in expect["scores"].items():
            assert math.isclose(row["scores"][m], v, rel_tol=1e-9, abs_tol=1e-9)
        for key in ("labels", "qualified", "disqualified", "reasons", "as_of"):
            assert row[key] == expect[key], (row["id"], key)


def test_example_data_agrees_with_python(rules: leaddsl.Ruleset,
                                          python_run: leaddsl.Scored) -> None:
    run = batch.score(rules, events=DATA / "events.ndjson", contacts=DATA / "contacts.ndjson",
                      accounts=DATA / "accounts.ndjson", threads=2, errors="collect")
    _same(run.contacts, python_run.results)
    _same(run.accounts, python_run.accounts)
    assert run.events == python_run.events and run.as_of == python_run.as_of
    assert run.orphans == python_run.orphans
    # The example data holds bad records on purpose: the same ones are set aside, same reasons.
    assert [(r.source, r.reason) for r in run.rejected] == [
        (r.source, r.reason) for r in python_run.rejected]
    assert run.rejected


def test_parquet_globs_and_relations(rules: leaddsl.Ruleset, python_run: leaddsl.Scored,
                                     tmp_path: Path) -> None:
    con = duckdb.connect()
    half = tmp_path / "events"
    half.mkdir()
    # The events split in two Parquet files, read back through a glob.
    events = con.read_json(str(DATA / "events.ndjson"))
    events.filter("id < 'e00400'").write_parquet(str(half / "a.parquet"))
    events.filter("id >= 'e00400'").write_parquet(str(half / "b.parquet"))
    run = batch.score(rules, events=str(half / "*.parquet"), contacts=DATA / "contacts.ndjson",
                      accounts=DATA / "accounts.ndjson", errors="collect")
    _same(run.contacts, python_run.results)
    # An existing DuckDB relation works as input too.
    run = batch.score(rules, events=con.read_parquet(str(half / "*.parquet")),
                      contacts=DATA / "contacts.ndjson", accounts=DATA / "accounts.ndjson",
                      errors="collect")
    _same(run.accounts, python_run.accounts)


def test_write_parquet_and_ndjson(rules: leaddsl.Ruleset, tmp_path: Path) -> None:
    run = batch.score(rules, events=DATA / "events.ndjson", contacts=DATA / "contacts.ndjson",
                      accounts=DATA / "accounts.ndjson", errors="collect")
    written = run.write(tmp_path / "scores.parquet")
    assert [p.name for p in written] == ["scores.parquet", "scores.accounts.parquet"]
    con = duckdb.connect()
    rows = con.read_parquet(str(written[0])).fetchall()
    assert len(rows) == len(run.contacts)
    best = con.sql(f"SELECT id, total FROM read_parquet('{written[1]}') ORDER BY total DESC "
                   "LIMIT 1").fetchall()[0]
    top = max(run.accounts, key=lambda r: r["total"])
    assert best == (top["id"], top["total"])
    written = run.write(tmp_path / "scores.ndjson")
    lines = written[0].read_bytes().splitlines()
    assert [orjson.loads(x) for x in lines] == list(run.contacts)
    with pytest.raises(leaddsl.LeadDSLError, match=r"\.parquet or \.ndjson"):
        run.write(tmp_path / "scores.csv")


BAD_EVENTS = [
    {"id": "e1", "contact": "c1", "action": "visited", "object": "page", "at": "2026-03-01"},
    {"id": "e2", "contact": "c1", "at": "2026-03-01"},
    {"id": "e3", "contact": "c1", "action": "visited", "at": "yesterday"},
    {"id": "e4", "contact": "nobody", "action": "visited", "at": "2026-03-01"},
]


def _write_lines(path: Path, records: list[Any], broken: str | None = None) -> Path:
    with open(path, "wb") as f:
        for rec in records:
            f.write(orjson.dumps(rec) + b"\n")
        if broken is not None:
            f.write(broken.encode() + b"\n")
    return path


def test_bad_events_stop_the_run_naming_file_line_and_field(tmp_path: Path) -> None:
    rules = leaddsl.compile("when visited page any: +1")
    events = _write_lines(tmp_path / "events.ndjson", BAD_EVENTS)
    with pytest.raises(leaddsl.RecordError) as info:
        batch.score(rules, events=events, contacts=[{"id": "c1"}])
    assert info.value.source == f"{events}:2" and info.value.field == "action"


def test_bad_events_are_collected_with_their_reasons(tmp_path: Path) -> None:
    rules = leaddsl.compile("when visited page any: +1")
    events = _write_lines(tmp_path / "events.ndjson", BAD_EVENTS, broken="{not json")
    run = batch.score(rules, events=events, contacts=[{"id": "c1"}], errors="collect")
    got = [(r.source, r.reason) for r in run.rejected]
    assert [s for s, _ in got] == [f"{events}:{n}" for n in (2, 3, 4, 5)]
    assert "missing action" in got[0][1] and "ISO 8601" in got[1][1]
    assert "unknown contact 'nobody'" in got[2][1] and "not valid JSON" in got[3][1]
    assert run.events == 1 and run.contacts[0]["total"] == 1.0


def test_bad_contacts_and_parquet_rows_are_named(tmp_path: Path) -> None:
    rules = leaddsl.compile("when employees >= 10: +1")
    with pytest.raises(leaddsl.RecordError) as info:
        batch.score(rules, events=[], contacts=[{"id": "c1", "employees": "many"}])
    assert (info.value.source, info.value.field) == ("contacts[0]", "employees")
    con = duckdb.connect()
    path = tmp_path / "events.parquet"
    con.sql("SELECT 'c1' AS contact, 'visited' AS action, '2026-01-01' AS at UNION ALL "
            "SELECT 'c1', NULL, '2026-01-02'").write_parquet(str(path))
    run = batch.score(rules, events=path, contacts=[{"id": "c1"}], errors="collect")
    assert [(r.source, "missing action" in r.reason) for r in run.rejected] == [
        ("events row 2", True)]


def test_duplicate_ids_count_once_and_the_first_delivery_wins() -> None:
    rules = leaddsl.compile("when visited page any: +1\nwhen submitted form any: +10")
    events = [
        {"id": "e1", "contact": "c1", "action": "visited", "object": "page", "at": "2026-03-01"},
        {"id": "e1", "contact": "c1", "action": "submitted", "object": "form", "at": "2026-03-02"},
        {"id": "e1", "contact": "c2", "action": "submitted", "object": "form", "at": "2026-03-02"},
        {"contact": "c2", "action": "visited", "object": "page", "at": "2026-03-01"},
        {"contact": "c2", "action": "visited", "object": "page", "at": "2026-03-01"},
    ]
    run = batch.score(rules, events=events, contacts=[{"id": "c1"}, {"id": "c2"}])
    assert [r["total"] for r in run.contacts] == [1.0, 12.0]
    assert run.duplicates == 1 and run.events == 4


def test_a_bad_first_delivery_does_not_hide_the_good_one() -> None:
    """The Python path never takes a bad event in, so a valid event with the same id after it
    is the first delivery that counts; the batch numbers deliveries among valid events only."""
    rules = leaddsl.compile("when visited page any: +1\nwhen submitted form any: +10")
    events = [
        {"id": "e1", "contact": "c1", "object": "form", "at": "2026-03-01"},  # no action
        {"id": "e1", "contact": "c1", "action": "submitted", "object": "form", "at": "2026-03-02"},
        {"id": "e2", "contact": "c1", "action": "visited", "object": "page", "at": "2026-03-02"},
        {"id": "e2", "contact": "c1", "action": "visited", "object": "page", "at": "2026-03-03"},
    ]
    run = batch.score(rules, events=events, contacts=[{"id": "c1"}], errors="collect")
    python = leaddsl.score_all(rules, [{"id": "c1"}], events, errors="collect")
    assert run.contacts[0]["total"] == python.results["c1"].total == 11.0
    assert (run.events, run.duplicates) == (python.events, 1)
    assert [r.source for r in run.rejected] == [r.source for r in python.rejected] == ["events[0]"]


INACTIVE = """score engagement:
    when visited page any: +5 within 30 days
    when inactive for 10 days: -3
account:
    score pool = sum of contacts by engagement
    score quiet:
        when inactive for 20 days: -7
    disqualify "dormant" when inactive for 40 days
    rollup to parent: sum
"""


def test_a_script_re_scored_is_compiled_to_sql_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SQL of a script is built on its first runs and reused; it reads the as-of time
    from a table, so runs at other times still agree with Python: each side of the contacts'
    and the accounts' inactivity lines, given or taken from the latest event, with the
    hierarchy scored level by level (a subsidiary's disqualification)."""
    rules = leaddsl.compile(INACTIVE)  # a window: two passes, whether the time is given or not
    people = [{"id": "c1", "account": "a1"}, {"id": "c2", "account": "a2"},
              {"id": "c3", "account": "a2"}]
    accounts = [{"id": "a1"}, {"id": "a2", "parent": "a1"}]
    events = [{"id": "e1", "contact": "c1", "action": "visited", "object": "page",
               "at": "2026-03-01"},
              {"id": "e2", "contact": "c2", "action": "visited", "object": "page",
               "at": "2026-01-15"},
              {"id": "e3", "contact": "c3", "action": "visited", "object": "page",
               "at": "2026-01-10"}]
    built: list[tuple[Any, ...]] = []
    real = batch._scoring_sql
    monkeypatch.setattr(batch, "_scoring_sql", lambda *a: built.append(a) or real(*a))
    seen = set()
    for as_of in ("2026-03-02", None, "2026-03-15", "2026-04-01", "2026-05-01", "2026-03-02"):
        run = batch.score(rules, events=events, contacts=people, accounts=accounts, as_of=as_of)
        python = leaddsl.score_all(rules, people, events, accounts=accounts, as_of=as_of)
        _same(run.contacts, python.results)
        _same(run.accounts, python.accounts)
        seen.add(tuple(tuple(sorted(r["reasons"])) for r in run.accounts))
    # One query for any time given (read from a table) and one for the latest event's.
    assert [a[2] for a in built] == [True, False]
    assert len(seen) > 1  # the account's disqualify line read the time given
    # At the latest event (2026-03-01) a2 has been quiet for 45 days.
    latest = batch.score(rules, events=events, contacts=people, accounts=accounts)
    assert [r["reasons"] for r in latest.accounts] == [[], ["dormant"]]


def test_a_missing_extra_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_duckdb(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "duckdb":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, "duckdb")
    monkeypatch.setattr(builtins, "__import__", no_duckdb)
    with pytest.raises(leaddsl.LeadDSLError) as info:
        batch.score(leaddsl.compile("when visited: +1"), events=[], contacts=[])
    assert str(info.value) == "this needs the 'duckdb' package: pip install 'leaddsl[batch]'"


def test_to_sql_runs_in_a_warehouse(rules: leaddsl.Ruleset, python_run: leaddsl.Scored) -> None:
    """The to_sql text over plain typed tables gives the Python scores (DuckDB standing in for
    a warehouse: the events' `at` a TIMESTAMPTZ column, contacts with typed columns)."""
    con = _warehouse(rules)
    sql = rules.to_sql(dialect="duckdb", as_of=python_run.as_of)
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    rows = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    assert set(rows) >= set(python_run.results)
    for cid, want in python_run.results.items():
        assert math.isclose(rows[cid]["total"], want.total, rel_tol=1e-9, abs_tol=1e-9), cid
        for ladder, label in want.labels.items():
            assert rows[cid][f"label:{ladder}"] == label, (cid, ladder)
        assert rows[cid]["qualified"] == want.qualified, cid


def _warehouse(rules: leaddsl.Ruleset) -> Any:
    """DuckDB standing in for a warehouse: typed tables as a warehouse would hold them."""
    from leaddsl.sql.accounts import account_tables

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.read_json(str(DATA / "events.ndjson")).create("raw_events")
    # (The example data holds some bad records on purpose; a warehouse would have cleaned them.)
    con.execute('CREATE TABLE events AS SELECT contact, id, TRY_CAST("at" AS TIMESTAMPTZ) AS "at", '
                'action, object, name FROM raw_events '
                'WHERE TRY_CAST("at" AS TIMESTAMPTZ) IS NOT NULL AND action IS NOT NULL')
    con.read_json(str(DATA / "contacts.ndjson")).create("contacts")
    con.read_json(str(DATA / "accounts.ndjson")).create("accounts")
    engine = leaddsl.Engine(rules)
    engine.load(accounts=DATA / "accounts.ndjson", contacts=DATA / "contacts.ndjson",
                errors="collect")
    members, hierarchy = account_tables(engine)
    con.execute("CREATE TABLE members (account VARCHAR, contact VARCHAR, role VARCHAR)")
    con.executemany("INSERT INTO members VALUES (?, ?, ?)", [m[:3] for m in members])
    con.execute("CREATE TABLE hierarchy (ancestor VARCHAR, descendant VARCHAR, depth INTEGER)")
    con.executemany("INSERT INTO hierarchy VALUES (?, ?, ?)", hierarchy)
    return con


def test_to_sql_accounts_runs_in_a_warehouse(rules: leaddsl.Ruleset,
                                             python_run: leaddsl.Scored) -> None:
    """The account query over the contact query, the accounts, memberships and the closed
    hierarchy gives the Python account results (a rollup with disqualify lines: by height)."""
    assert rules.plan.account is not None and rules.plan.account.rollup == "sum"
    assert any(r.parent is not None for r in python_run.accounts.values())
    assert any(r.disqualified for r in python_run.accounts.values())
    con = _warehouse(rules)
    sql = rules.to_sql(dialect="duckdb", as_of=python_run.as_of, part="accounts")
    assert sql.startswith("-- leaddsl: the account block")
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    rows = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    assert set(rows) == set(python_run.accounts)
    for aid, want in python_run.accounts.items():
        got = rows[aid]
        assert math.isclose(got["total"], want.total, rel_tol=1e-9, abs_tol=1e-9), aid
        for m, v in want.scores.items():
            assert math.isclose(got[f"score:{m}"], v, rel_tol=1e-9, abs_tol=1e-9), (aid, m)
        for ladder, label in want.labels.items():
            assert got[f"label:{ladder}"] == label, (aid, ladder)
        assert (got["qualified"], got["disqualified"], got["reasons"]) == (
            want.qualified, want.disqualified, list(want.reasons)), aid
        # In a warehouse the member lists are ordered by contact id.
        assert got["members"] == sorted(want.members), aid
        assert got["eligible"] == sorted(want.eligible), aid
        assert (got["parent"], got["subsidiaries"]) == (want.parent, list(want.subsidiaries))


def test_to_sql_accounts_scores_only_the_levels_asked_for(rules: leaddsl.Ruleset,
                                                          python_run: leaddsl.Scored) -> None:
    """A hierarchy deeper than ``levels``: the accounts higher up are left out, as the
    query's header says, never scored wrongly."""
    con = _warehouse(rules)
    sql = rules.to_sql(dialect="duckdb", as_of=python_run.as_of, part="accounts", levels=1)
    assert "up to 1 levels deep" in sql
    rows = {r[0]: r for r in con.execute(sql).fetchall()}
    leaves = {a for a, r in python_run.accounts.items() if not r.subsidiaries}
    assert set(rows) == leaves


def test_to_sql_accounts_needs_an_account_block() -> None:
    with pytest.raises(leaddsl.LeadDSLError, match="no account block"):
        leaddsl.compile("when visited: +1").to_sql(part="accounts")


@pytest.mark.parametrize("dialect", ["duckdb", "spark", "snowflake", "bigquery", "postgres"])
def test_to_sql_renders_one_statement_per_dialect(rules: leaddsl.Ruleset, dialect: str) -> None:
    import sqlglot

    text = rules.to_sql(dialect=dialect)
    statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    assert len(statements) == 1 and "WITH" in text.upper()


def test_cli_scores_with_duckdb_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          python_run: leaddsl.Scored) -> None:
    out = tmp_path / "scores.ndjson"
    code = main(["score", str(EXAMPLES / "rules.lead"), "--contacts",
                 str(DATA / "contacts.ndjson"), "--events", str(DATA / "events.ndjson"),
                 "--accounts", str(DATA / "accounts.ndjson"), "--backend", "duckdb",
                 "--threads", "1", "--out", str(out), "--errors", "collect"])
    assert code == 0
    assert "wrote" in capsys.readouterr().err
    rows = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    _same(rows, python_run.results)
    accounts = [orjson.loads(x) for x in
                (tmp_path / "scores.accounts.ndjson").read_bytes().splitlines()]
    _same(accounts, python_run.accounts)


def test_cli_prints_duckdb_results_like_python(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["score", str(EXAMPLES / "rules.lead"), "--contacts", str(DATA / "contacts.ndjson"),
            "--events", str(DATA / "events.ndjson"), "--accounts", str(DATA / "accounts.ndjson"),
            "--top", "5", "--format", "csv", "--errors", "collect"]
    assert main(args) == 0
    python = capsys.readouterr().out
    assert main([*args, "--backend", "duckdb"]) == 0
    duck = capsys.readouterr().out
    assert duck.splitlines()[:6] == python.splitlines()[:6]


def test_cli_sql_prints_the_query(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", str(EXAMPLES / "rules.lead"), "--dialect", "spark"]) == 0
    assert "score:" in capsys.readouterr().out
    assert main(["sql", str(EXAMPLES / "rules.lead"), "--accounts", "--levels", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("-- leaddsl: the account block") and "up to 3 levels deep" in out


def test_a_dialect_that_cannot_express_the_script_names_the_construct(
        rules: leaddsl.Ruleset) -> None:
    lines = ", ".join(str(d.line) for d in rules.plan.disqualify)
    with pytest.raises(leaddsl.LeadDSLError, match=rf"in mysql SQL: Arrays .*disqualify lines "
                                                   rf"on line {lines}\)"):
        rules.to_sql(dialect="mysql")
    # Other dialects take it.
    assert "score:" in rules.to_sql(dialect="tsql")
    with pytest.raises(leaddsl.LeadDSLError, match="Unknown dialect"):
        rules.to_sql(dialect="no-such-dialect")


def test_explain_stays_on_the_python_path_and_agrees_with_the_batch(
    rules: leaddsl.Ruleset, capsys: pytest.CaptureFixture[str]
) -> None:
    """`leaddsl explain` reads one contact's events from the same files through Python; its
    rows add up to the batch total, for every contact and account of the example data."""
    run = batch.score(rules, events=DATA / "events.ndjson", contacts=DATA / "contacts.ndjson",
                      accounts=DATA / "accounts.ndjson", errors="collect")
    python = leaddsl.score_all(rules, DATA / "contacts.ndjson", DATA / "events.ndjson",
                               accounts=DATA / "accounts.ndjson", errors="collect")
    for rows, results in ((run.contacts, python.results), (run.accounts, python.accounts)):
        for row in rows:
            explained = math.fsum(c.points for c in results[row["id"]].explain())
            assert math.isclose(explained, row["total"], rel_tol=1e-9, abs_tol=1e-9), row["id"]
    best = max(run.contacts, key=lambda r: r["total"])
    code = main(["explain", str(EXAMPLES / "rules.lead"), "--contacts",
                 str(DATA / "contacts.ndjson"), "--events", str(DATA / "events.ndjson"),
                 "--accounts", str(DATA / "accounts.ndjson"), "--errors", "collect",
                 "--contact", best["id"]])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith(f"{best['id']}: {best['total']:.2f} points at ")
