"""The examples: the rule script compiles, the data is what the generator makes, the demo runs.

The demo (``make demo``) is the first thing a newcomer sees, so its numbers are checked against
``score_all`` itself, and the story the data tells (the loyal-reader trap) is checked too.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import leaddsl

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RULES = EXAMPLES / "rules.lead"
DATA = EXAMPLES / "data"
FILES = ("contacts.ndjson", "accounts.ndjson", "events.ndjson")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("leaddsl_example_generate",
                                                  EXAMPLES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    return _generator()


@pytest.fixture(scope="module")
def rules() -> leaddsl.Ruleset:
    return leaddsl.load(RULES)


@pytest.fixture(scope="module")
def run(rules: leaddsl.Ruleset) -> leaddsl.Scored:
    return leaddsl.score_all(rules, DATA / "contacts.ndjson", DATA / "events.ndjson",
                             accounts=DATA / "accounts.ndjson", errors="collect")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> str:
    # From a directory far from the repository: the demo finds its files by itself.
    cwd = tmp_path_factory.mktemp("elsewhere")
    proc = subprocess.run([sys.executable, str(EXAMPLES / "demo.py")], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def _records(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _flat(text: str) -> str:
    return " ".join(text.split())


# ---- the rule script ---------------------------------------------------------------------


def test_rules_compile_without_errors_or_warnings(rules: leaddsl.Ruleset) -> None:
    found = leaddsl.check(RULES.read_text(encoding="utf-8"), str(RULES))
    assert [d.render() for d in found if d.severity != "note"] == []
    assert rules.models == ("engagement", "fit")
    assert set(rules.ladders) >= {"band", "grade", "stage", "priority"}


def test_rules_follow_the_brief(rules: leaddsl.Ruleset) -> None:
    # Clientify's bands on engagement: cold up to 20, warm 21-40, hot 41 and up.
    def band(points: int) -> str:
        clicks = [{"id": f"e{i}", "action": "clicked", "object": "campaign", "name": "news",
                   "at": "2026-10-01T10:00:00Z"} for i in range(points // 5)]
        return rules.score({"id": "c"}, clicks).labels["band"]

    assert [band(20), band(25), band(40), band(45)] == ["cold", "warm", "warm", "hot"]
    demo = {"id": "d", "action": "submitted", "object": "form", "name": "demo-request",
            "at": "2026-10-01T10:00:00Z"}
    vp = {"id": "c", "job_title": "VP Marketing", "employees": 300, "industry": "Software",
          "country": "ES"}
    result = rules.score(vp, [demo])
    assert (result.scores["engagement"], result.scores["fit"]) == (40.0, 50.0)
    assert result.qualified  # a demo request is enough on its own
    assert dict(result.labels) == {"band": "warm", "grade": "A", "stage": "BOFU",
                                   "priority": "A2"}
    student = rules.score({"id": "s", "job_title": "Marketing student"}, [demo])
    assert student.disqualified and not student.qualified


# ---- the data --------------------------------------------------------------------------------


def test_generator_reproduces_the_committed_data(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(EXAMPLES / "generate.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_another_seed_gives_other_data(generate: ModuleType) -> None:
    assert generate.build(seed=1).events != generate.build(seed=2).events


def test_data_is_small_and_plausible() -> None:
    assert sum((DATA / name).stat().st_size for name in FILES) < 1_500_000
    contacts, accounts, events = (_records(name) for name in FILES)
    assert len(contacts) == 300 and len(accounts) == 40
    assert 3000 <= len(events) <= 6000
    times = [e["at"] for e in events]
    assert times == sorted(times)
    assert {e["channel"] for e in events} == {"email", "web", "ads", "social", "events"}
    roles = {c.get("role") for c in contacts}
    assert {"decision maker", "champion", "influencer", "user", "blocker"} <= roles
    assert any("job_title" not in c or not c["job_title"] for c in contacts)
    assert any(c.get("employees") in (None, "") for c in contacts)
    # Accounts: every parent and every contact's account exists, and the hierarchy has no loop.
    by_id = {a["id"]: a for a in accounts}
    assert all(a["domains"] and all("." in d for d in a["domains"]) for a in accounts)
    assert all(c.get("account") is None or c["account"] in by_id for c in contacts)
    depth = 0
    for account in accounts:
        seen, node = set(), account
        while node["parent"] is not None:
            assert node["id"] not in seen
            seen.add(node["id"])
            node = by_id[node["parent"]]
        depth = max(depth, len(seen))
    assert depth >= 2  # at least one grandparent


# ---- what the rules make of the data ---------------------------------------------------------


def test_loyal_readers_are_never_qualified(generate: ModuleType, run: leaddsl.Scored) -> None:
    personas = generate.build().personas
    loyal = [run.results[cid] for cid, p in personas.items() if p == "loyal"]
    assert len(loyal) >= 20
    assert not any(r.qualified for r in loyal)
    # The trap is real: many of them pass the threshold on reading alone.
    assert sum(r.total >= 100 for r in loyal) >= 5
    # And what defines them holds in the data: plenty of opens, never pricing or a demo.
    events = _records("events.ndjson")
    for r in loyal:
        mine = [e for e in events if e["contact"] == r.id]
        assert sum(e["action"] == "opened" for e in mine) >= 15
        assert not any(e["name"] in ("pricing", "demo-request", "book-a-meeting") for e in mine)


def test_buyers_qualify_and_outsiders_do_not(generate: ModuleType, run: leaddsl.Scored) -> None:
    personas = generate.build().personas
    by = {p: [run.results[cid] for cid, q in personas.items() if q == p]
          for p in set(personas.values())}
    assert all(r.qualified and r.labels["stage"] == "BOFU" for r in by["hot"])
    assert all(r.reasons == ("student",) for r in by["student"])
    assert all(r.reasons == ("competitor",) for r in by["competitor"])
    assert all(not r.qualified for r in by["student"] + by["competitor"])


def test_orphan_events_are_set_aside(run: leaddsl.Scored) -> None:
    assert len(run.rejected) == 3
    assert all("unknown contact 'c9001'" in r.reason for r in run.rejected)


def test_accounts_of_the_example(run: leaddsl.Scored) -> None:
    accounts = [json.loads(line) for line in (DATA / "accounts.ndjson").read_text().splitlines()]
    contacts = [json.loads(line) for line in (DATA / "contacts.ndjson").read_text().splitlines()]
    assert set(run.accounts) == {a["id"] for a in accounts}
    # Contacts without an account field join by email domain, unless it is a free mail address.
    no_account = {c["id"] for c in contacts if not c.get("account")}
    assert set(run.orphans) <= no_account
    assert any(c["id"] in no_account and c["id"] not in run.orphans for c in contacts)
    # The hierarchy rolls up: with `rollup to parent: sum`, a parent adds its subsidiaries.
    parents = {a["id"]: a["parent"] for a in accounts if a.get("parent")}
    assert len(set(parents.values())) >= 2
    for aid, result in run.accounts.items():
        kids = [run.accounts[k] for k, p in parents.items() if p == aid]
        own = result.state.own_total  # type: ignore[union-attr]
        counted = [k.total for k in kids if not k.disqualified]
        assert result.total == pytest.approx(own + sum(counted))
    # Universities are disqualified; the tiers are spread out, not all strategic.
    assert any(a.reasons == ("education",) for a in run.accounts.values())
    tiers = {a.labels["tier"] for a in run.accounts.values()}
    assert tiers == {"strategic", "target", "watch"}


def test_demo_shows_the_top_accounts(demo: str, run: leaddsl.Scored) -> None:
    tail = demo.split("accounts (subsidiaries rolled up")[1]
    lines = tail.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("---")) + 1
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[start:start + 10]]
    top = run.top_accounts(10)
    assert [row[1] for row in rows] == [a.id for a in top]
    assert [float(row[2]) for row in rows] == [round(a.total, 1) for a in top]
    assert [row[3] for row in rows] == [a.labels["tier"] for a in top]
    assert f"Why {top[0].id} leads" in demo
    for row in top[0].explain():
        assert _flat(row.describe()) in _flat(demo)


# ---- the demo --------------------------------------------------------------------------------


def _table(out: str) -> list[list[str]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Top ")) + 3
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(line)
    return [re.split(r"\s{2,}", row.strip()) for row in rows]


def test_demo_header_matches_score_all(demo: str, run: leaddsl.Scored) -> None:
    head = _flat(demo.split("Top ")[0])
    assert f"contacts {len(run.results):,}" in head
    assert f"events {run.events:,}" in head
    assert run.as_of is not None
    assert f"as of {run.as_of:%Y-%m-%d %H:%M} UTC" in head
    assert f"rejected {len(run.rejected):,}" in head
    qualified = sum(r.qualified for r in run.results.values())
    assert f"qualified {qualified:,}" in head


def test_demo_table_is_the_top_15(demo: str, run: leaddsl.Scored) -> None:
    rows = _table(demo)
    assert len(rows) == 15
    top = run.top(15)
    assert [int(row[0]) for row in rows] == list(range(1, 16))
    assert [row[1] for row in rows] == [r.id for r in top]
    scores = [float(row[3]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert scores == [round(r.total, 1) for r in top]
    for row, r in zip(rows, top, strict=True):
        band, grade, priority, flag = row[4:8]
        assert (band, grade, priority) == (r.labels["band"], r.labels["grade"],
                                           r.labels["priority"])
        assert flag == ("DQ: " + ", ".join(r.reasons) if r.disqualified
                        else "yes" if r.qualified else "no")
    assert {row[7] for row in rows} >= {"yes", "no"}  # the table shows both kinds


def test_demo_explains_the_first_and_the_best_unqualified(demo: str, run: leaddsl.Scored) -> None:
    best = run.top(1)[0]
    assert f"Why {best.id} is #1" in demo
    flat = _flat(demo)
    rows = best.explain()
    assert rows
    for row in rows:
        assert _flat(row.describe()) in flat
    (near,) = run.top(1, where=lambda r: not r.qualified and not r.disqualified)
    assert f"Best contact not qualified yet: {near.id}" in demo
    tail = demo.split("Best contact not qualified yet")[1]
    for line in near.missing():
        for term in line.failing:
            assert f"MISSING {term.text}" in _flat(tail)


def test_demo_fits_a_terminal(demo: str) -> None:
    assert max(len(line) for line in demo.splitlines()) <= 100
