"""The Spark backend in local mode (local[2]): the conformance suite and differential tests.

One SparkSession serves the whole test session. Without a Java runtime these tests skip and
say so; everywhere else (CI has Java 17) they run.

The contact conformance cases are grouped by script and as-of time, each case's contact under
its own id, so that one Spark run scores a whole group (a Spark job costs seconds, not
milliseconds). Account cases run one per case for a few constructs; the account query is the
one DuckDB runs on every account case, rendered for Spark; a differential test with generated
account blocks and hierarchies checks it here too.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_account_conformance as accounts_suite
import test_sql_conformance as sql_suite
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from test_properties import scripts
from test_sql_differential import account_blocks, assert_same, worlds

import leaddsl
from leaddsl.records import parse_time

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (leaddsl[spark])")
if shutil.which("java") is None:
    pytest.skip("no Java runtime: the Spark tests need one (e.g. openjdk-17-jre)",
                allow_module_level=True)

import leaddsl.spark as lspark  # noqa: E402

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]").appName("leaddsl-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _frame(spark: Any, records: list[dict[str, Any]], columns: str) -> Any:
    """A DataFrame of records through JSON, as a user's files would arrive."""
    import orjson

    if not records:
        return spark.createDataFrame([], columns)
    lines = [orjson.dumps(r, default=str).decode() for r in records]
    return spark.read.json(spark.sparkContext.parallelize(lines))


EVENT_COLUMNS = "id string, contact string, at string, action string, object string, name string"


def _run(spark: Any, rules: leaddsl.Ruleset, world: dict[str, Any], as_of: object,
         errors: str = "raise") -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    contacts, accounts, rejected = lspark.score_with_report(
        rules, _frame(spark, world.get("events", []), EVENT_COLUMNS),
        _frame(spark, world.get("contacts", []), "id string"),
        _frame(spark, world.get("accounts", []), "id string") if world.get("accounts") else None,
        as_of, errors=errors)
    rows = [r.asDict(recursive=True) for r in contacts.collect()]
    accs = [] if accounts is None else [r.asDict(recursive=True) for r in accounts.collect()]
    # Scoring accounts by height caches its frames (see leaddsl.spark.score); hundreds of
    # runs in one session would otherwise fill the driver's memory.
    spark.catalog.clearCache()
    for row in rows + accs:
        row["labels"] = {k: v for k, v in (row.get("labels") or {}).items() if v is not None}
        row["scores"] = row.get("scores") or {}
        row["reasons"] = list(row.get("reasons") or [])
    return rows, accs, rejected


def _kind(value: Any) -> str:
    return ("bool" if isinstance(value, bool) else "number" if isinstance(value, (int, float))
            else type(value).__name__)


def _groups() -> list[Any]:
    """Contact conformance cases by (script, as-of): one Spark run per group. A DataFrame
    column has one type, so cases whose attributes disagree on a type (a number here, text
    there: both would become text) go to different groups."""
    groups: dict[tuple[Path, float | None], list[tuple[dict[str, str], list[Any]]]] = {}
    for param in sql_suite._contact_params():
        json_path, case = param.values
        if "error" in case["expect"] or "xfail" in case:
            continue  # errors are named per backend; test_spark_names_bad_records covers them
        events = case.get("events", [])
        when = (parse_time(case["as_of"]) if "as_of" in case
                else max((parse_time(e["at"]) for e in events), default=None))
        kinds = {k: _kind(v) for k, v in case.get("contact", {}).items() if v is not None}
        buckets = groups.setdefault((json_path, when), [])
        for seen, cases in buckets:
            if all(seen.get(k, kind) == kind for k, kind in kinds.items()):
                seen.update(kinds)
                cases.append(case)
                break
        else:
            buckets.append((kinds, [case]))
    ordered = sorted(groups.items(), key=lambda g: (str(g[0][0]), g[0][1] or 0))
    return [pytest.param(path, when, cases, id=f"{path.parent.name}/{path.stem}@{when}#{n}")
            for (path, when), buckets in ordered for n, (_, cases) in enumerate(buckets)]


@pytest.mark.parametrize(("json_path", "when", "cases"), _groups())
def test_contact_conformance_on_spark(spark: Any, json_path: Path, when: float | None,
                                      cases: list[dict[str, Any]]) -> None:
    rules = leaddsl.load(json_path.with_suffix(".lead"))
    contacts, events = [], []
    for k, case in enumerate(cases):
        contact, evs, _ = sql_suite.contact_inputs(case)
        cid = f"case{k}"
        contacts.append(dict(contact, id=cid))
        events += [dict(e, contact=cid) for e in evs]
    rows, _, _ = _run(spark, rules, {"contacts": contacts, "events": events}, when)
    got = {r["id"]: r for r in rows}
    for k, case in enumerate(cases):
        expect = {key: v for key, v in case["expect"].items()
                  if key not in sql_suite.SQL_ONLY_SKIPPED}
        row = sql_suite._row_object(got[f"case{k}"])
        problems = [p for p in sql_suite.contacts_suite._compare(expect, row)  # type: ignore[arg-type]
                    if not p.startswith("fsum(explain")]
        assert not problems, (case["description"], problems)


def _account_params() -> list[Any]:
    """The first case of each account construct folder."""
    seen: set[str] = set()
    out = []
    for param in accounts_suite._params():
        json_path, case = param.values
        folder = json_path.parent.name
        if folder in seen or "error" in case["expect"] or "xfail" in case:
            continue
        seen.add(folder)
        out.append(param)
    return out


@pytest.mark.parametrize(("json_path", "case"), _account_params())
def test_account_conformance_on_spark(spark: Any, json_path: Path, case: dict[str, Any]) -> None:
    import account_cases

    rules = leaddsl.load(json_path.with_suffix(".lead"))
    rows, accs, _ = _run(spark, rules, case, case.get("as_of"), case.get("errors", "raise"))
    accounts = {r["id"]: r for r in accs}
    contacts = {r["id"]: r for r in rows}
    for aid, want in case["expect"].get("accounts", {}).items():
        want = {k: v for k, v in want.items() if k != "explain"}
        account_cases.check_result(sql_suite._row_object(accounts[aid]), want, f"account {aid}")
    for cid, want in case["expect"].get("contacts", {}).items():
        want = {k: v for k, v in want.items() if k != "explain"}
        account_cases.check_result(sql_suite._row_object(contacts[cid]), want, f"contact {cid}")


def test_example_data_on_spark_matches_python(spark: Any) -> None:
    """A few thousand events with accounts, subsidiaries, domains and bad records."""
    rules = leaddsl.load(EXAMPLES / "rules.lead")
    data = EXAMPLES / "data"
    want = leaddsl.score_all(rules, data / "contacts.ndjson", data / "events.ndjson",
                             accounts=data / "accounts.ndjson", errors="collect")
    contacts, accounts, rejected = lspark.score_with_report(
        rules, spark.read.json(str(data / "events.ndjson")),
        spark.read.json(str(data / "contacts.ndjson")),
        spark.read.json(str(data / "accounts.ndjson")), errors="collect")
    assert want.events > 2000
    rows = {r.id: r.asDict(recursive=True) for r in contacts.collect()}
    assert set(rows) == set(want.results)
    for cid, result in want.results.items():
        row = rows[cid]
        row["labels"] = {k: v for k, v in row["labels"].items() if v is not None}
        assert_same(row, result.to_dict(), cid)
    accs = {r.id: r.asDict(recursive=True) for r in accounts.collect()}
    for aid, result in want.accounts.items():
        assert math.isclose(accs[aid]["total"], result.total, rel_tol=1e-9, abs_tol=1e-9), aid
    assert len(rejected) == len(want.rejected)


def test_spark_names_bad_records(spark: Any) -> None:
    rules = leaddsl.compile("when visited page any: +1")
    events = [{"id": "e1", "contact": "c1", "action": "visited", "object": "page",
               "at": "2026-03-01T00:00:00Z"},
              {"id": "e2", "contact": "c1", "action": "visited", "at": "yesterday"}]
    world = {"contacts": [{"id": "c1"}], "events": events}
    with pytest.raises(leaddsl.RecordError) as info:
        _run(spark, rules, world, None)
    assert info.value.field == "at" and info.value.record_id == "e2"
    rows, _, rejected = _run(spark, rules, world, None, errors="collect")
    assert rows[0]["total"] == 1.0 and [r.source for r in rejected] == ["events (id 'e2')"]


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.data())
def test_spark_matches_python_on_generated_scripts(spark: Any, data: st.DataObject) -> None:
    script = data.draw(scripts(bool_lists=2))
    rules = leaddsl.compile(script.text)
    world = data.draw(worlds(script.patterns))
    world["accounts"] = []
    for c in world["contacts"]:
        c.pop("account", None)
    # Spark keeps the earliest of the events sharing an id, Python the first delivered (a
    # documented difference): here a repeated id is only ever an exact resend.
    first: dict[tuple[str, str], dict[str, Any]] = {}
    resent = []
    for ev in world["events"]:
        if ev.get("id") is None or first.setdefault((ev["contact"], str(ev["id"])), ev) == ev:
            resent.append(ev)
    world["events"] = resent
    note(script.text)
    note(repr(world))
    want = leaddsl.score_all(rules, world["contacts"], world["events"])
    rows, _, _ = _run(spark, rules, world, None)
    assert {r["id"] for r in rows} == set(want.results)
    for row in rows:
        assert_same(row, want.results[row["id"]].to_dict(), row["id"])


def test_the_spark_example_job_runs(tmp_path: Path) -> None:
    """examples/spark_job.py, as spark-submit would run it (its own process and session)."""
    import subprocess
    import sys

    out = tmp_path / "scores"
    subprocess.run([sys.executable, str(EXAMPLES / "spark_job.py"), str(EXAMPLES / "rules.lead"),
                    str(EXAMPLES / "data"), str(out)], check=True, capture_output=True,
                   timeout=600)
    import duckdb

    con = duckdb.connect()
    n = con.sql(f"SELECT count(*) FROM read_parquet('{out}/contacts/*.parquet')").fetchall()[0][0]
    top = con.sql(f"SELECT id, total FROM read_parquet('{out}/accounts/*.parquet') "
                  "ORDER BY total DESC, id LIMIT 1").fetchall()[0]
    rules = leaddsl.load(EXAMPLES / "rules.lead")
    data = EXAMPLES / "data"
    want = leaddsl.score_all(rules, data / "contacts.ndjson", data / "events.ndjson",
                             accounts=data / "accounts.ndjson", errors="collect")
    best = want.top_accounts(1)[0]
    assert n == len(want.results)
    assert top[0] == best.id and math.isclose(top[1], best.total, rel_tol=1e-9)


def test_spark_scores_a_hierarchy_level_by_level(spark: Any) -> None:
    """Accounts disqualified by what their subsidiaries bring up, down a chain: Spark scores
    one height at a time and agrees with Python on every account and its lists."""
    rules = leaddsl.compile(
        "score engagement:\n    when visited page: +5\n"
        "account:\n    score pool = sum of top 2 contacts by engagement\n"
        '    weight role "decision maker" 2\n'
        '    disqualify "quiet" when count of contacts where engagement > 0 < 2\n'
        "    classify tier:\n        big when count of contacts >= 4\n        small otherwise\n"
        "    rollup to parent: sum\n")
    accounts = [{"id": f"a{i}", **({"parent": f"a{i - 1}"} if i else {})} for i in range(6)]
    contacts, events = [], []
    for i in range(6):
        for j in range(1 + (i % 3 == 0)):
            cid = f"c{i}{j}"
            contacts.append({"id": cid, "account": f"a{i}", "role": "decision maker"})
            if i % 4:
                events.append({"id": f"e{cid}", "contact": cid, "action": "visited",
                               "object": "page", "at": f"2026-03-01T00:0{i}:00Z"})
    world = {"accounts": accounts, "contacts": contacts, "events": events}
    want = leaddsl.score_all(rules, contacts, events, accounts=accounts).accounts
    flags = [want[f"a{i}"].disqualified for i in range(6)]
    assert any(flags) and not all(flags)
    _, accs, _ = _run(spark, rules, world, None)
    assert {a["id"] for a in accs} == set(want)
    for row in accs:
        assert_same(row, want[row["id"]].to_dict(), row["id"])


def test_to_sql_accounts_runs_on_spark(spark: Any) -> None:
    """The warehouse account query rendered for Spark, over plain tables, gives the Python
    account results (member lists ordered by contact id, as in any warehouse)."""
    from leaddsl.sql.accounts import account_tables

    rules = leaddsl.load(EXAMPLES / "rules.lead")
    data = EXAMPLES / "data"
    want = leaddsl.score_all(rules, data / "contacts.ndjson", data / "events.ndjson",
                             accounts=data / "accounts.ndjson", errors="collect")
    raw = spark.read.json(str(data / "events.ndjson"))
    raw.createOrReplaceTempView("raw_events")
    # (The example data holds bad records on purpose; a warehouse would have cleaned them.)
    spark.sql("SELECT contact, id, try_cast(`at` AS TIMESTAMP) AS `at`, action, object, name "
              "FROM raw_events WHERE try_cast(`at` AS TIMESTAMP) IS NOT NULL "
              "AND action IS NOT NULL").createOrReplaceTempView("events")
    spark.read.json(str(data / "contacts.ndjson")).createOrReplaceTempView("contacts")
    spark.read.json(str(data / "accounts.ndjson")).createOrReplaceTempView("accounts")
    engine = leaddsl.Engine(rules)
    engine.load(accounts=data / "accounts.ndjson", contacts=data / "contacts.ndjson",
                errors="collect")
    members, hierarchy = account_tables(engine)
    spark.createDataFrame([m[:3] for m in members], "account string, contact string, role string"
                          ).createOrReplaceTempView("members")
    spark.createDataFrame(hierarchy, "ancestor string, descendant string, depth int"
                          ).createOrReplaceTempView("hierarchy")
    levels = max(h[2] for h in hierarchy) + 1  # as docs/scaling.md says
    sql = rules.to_sql(dialect="spark", as_of=want.as_of, part="accounts", pretty=False,
                       levels=levels)
    rows = {r["id"]: r.asDict() for r in spark.sql(sql.split("\n")[-1]).collect()}
    assert set(rows) == set(want.accounts)
    for aid, result in want.accounts.items():
        got = rows[aid]
        assert math.isclose(got["total"], result.total, rel_tol=1e-9, abs_tol=1e-9), aid
        assert (got["disqualified"], got["qualified"]) == (result.disqualified, result.qualified)
        for ladder, label in result.labels.items():
            assert got[f"label:{ladder}"] == label, (aid, ladder)
        assert got["members"] == sorted(result.members), aid
        assert got["subsidiaries"] == list(result.subsidiaries), aid


@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.data())
def test_spark_accounts_match_python_on_generated_blocks(spark: Any, data: st.DataObject) -> None:
    """Generated account blocks (aggregates, weights, tests on contacts, group-dependent
    disqualify lines, rollups) over generated hierarchies: Spark's account rows are Python's."""
    script = data.draw(scripts(bool_lists=2))
    text = script.text.replace("    title: text; verified: boolean",
                               "    title: text; verified: boolean\n    role: text; status: text")
    text += "\n" + data.draw(account_blocks(script.models))
    rules = leaddsl.compile(text)
    world = data.draw(worlds(script.patterns))
    assume(world["accounts"])
    first: dict[tuple[str, str], dict[str, Any]] = {}  # exact resends only, as above
    world["events"] = [ev for ev in world["events"] if ev.get("id") is None
                       or first.setdefault((ev["contact"], str(ev["id"])), ev) == ev]
    note(text)
    note(repr(world))
    want = leaddsl.score_all(rules, world["contacts"], world["events"],
                             accounts=world["accounts"])
    _, accs, _ = _run(spark, rules, world, None)
    assert {a["id"] for a in accs} == set(want.accounts) != set()
    for row in accs:
        assert_same(row, want.accounts[row["id"]].to_dict(), row["id"])
