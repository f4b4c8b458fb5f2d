"""The conformance suites run on the SQL backend: the same cases, the same expectations.

Every data-file case of tests/conformance (contacts) and tests/accounts (accounts) is scored by
``leaddsl.batch.score`` on DuckDB and compared with the case's hand-computed expectations, as
the Python evaluator is. ``explain`` and ``missing`` expectations are left out: they describe
the Python results' explanations, which the batch rows do not carry.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import account_cases
import pytest
import test_account_conformance as accounts_suite
import test_conformance as contacts_suite

import leaddsl

batch = pytest.importorskip("leaddsl.batch")
pytest.importorskip("duckdb")

SQL_ONLY_SKIPPED = {"explain", "missing"}


def _row_object(row: dict[str, Any]) -> SimpleNamespace:
    data = dict(row)
    data["reasons"] = tuple(row["reasons"])
    data["explain"] = tuple  # no rows: the fsum check of the Python suite then reads 0
    for key in ("members", "eligible", "subsidiaries"):
        if key in data:
            data[key] = tuple(data[key])
    return SimpleNamespace(**data)


def contact_inputs(case: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    contact, events, as_of = contacts_suite._inputs(case)
    cid = contact.get("id")
    events = [dict(e, contact=cid) if isinstance(e, dict) and "contact" not in e else e
              for e in events]
    return contact, events, as_of


def _contact_params() -> list[Any]:
    """The contact cases that expect something a batch row holds (not only explain/missing)."""
    return [p for p in contacts_suite._params() if set(p.values[1]["expect"]) - SQL_ONLY_SKIPPED]


@pytest.mark.parametrize(("json_path", "case"), _contact_params())
def test_contact_case_on_duckdb(json_path: Path, case: dict[str, Any]) -> None:
    rules = contacts_suite._ruleset(json_path.with_suffix(".lead"))
    contact, events, as_of = contact_inputs(case)
    expect = {k: v for k, v in case["expect"].items() if k not in SQL_ONLY_SKIPPED}
    if "error" in expect:
        with pytest.raises(leaddsl.RecordError) as info:
            batch.score(rules, events=events, contacts=[contact], as_of=as_of)
        for key, want in expect["error"].items():
            if key == "source" and want == "contact":
                want = "contacts[0]"  # one record of a list, as score_all names it
            assert getattr(info.value, key) == want, (key, info.value)
        return
    result = batch.score(rules, events=events, contacts=[contact], as_of=as_of)
    assert len(result.contacts) == 1
    row = _row_object(result.contacts[0])
    problems = contacts_suite._compare(expect, row)  # type: ignore[arg-type]
    problems = [p for p in problems if not p.startswith("fsum(explain")]  # rows: Python only
    assert not problems, problems


@pytest.mark.parametrize(("json_path", "case"), accounts_suite._params())
def test_account_case_on_duckdb(json_path: Path, case: dict[str, Any]) -> None:
    rules = accounts_suite._ruleset(json_path.with_suffix(".lead"))
    expect = case["expect"]

    def run() -> Any:
        return batch.score(rules, events=case.get("events", []),
                           contacts=case.get("contacts", []), accounts=case.get("accounts", []),
                           as_of=case.get("as_of"), errors=case.get("errors", "raise"))

    if "error" in expect:
        err = expect["error"]
        kind = getattr(leaddsl, err.get("type", "LeadDSLError"))
        with pytest.raises(kind) as info:
            run()
        assert err.get("message", "") in str(info.value)
        for attr in ("field", "source", "record_id"):
            if attr in err:
                assert getattr(info.value, attr) == err[attr], (attr, info.value)
        return
    result = run()
    if "orphans" in expect:
        assert list(result.orphans) == expect["orphans"]
    if "rejected" in expect:
        got = [(r.source, r.reason) for r in result.rejected]
        assert len(got) == len(expect["rejected"]), got
        for (source, reason), (want_source, want_text) in zip(got, expect["rejected"],
                                                                strict=True):
            assert source == want_source and want_text in reason, (source, reason)
    accounts = {r["id"]: r for r in result.accounts}
    contacts = {r["id"]: r for r in result.contacts}
    for aid, want in expect.get("accounts", {}).items():
        want = {k: v for k, v in want.items() if k != "explain"}
        account_cases.check_result(_row_object(accounts[aid]), want, f"account {aid}")
    for cid, want in expect.get("contacts", {}).items():
        want = {k: v for k, v in want.items() if k != "explain"}
        account_cases.check_result(_row_object(contacts[cid]), want, f"contact {cid}")


def test_every_case_file_is_run() -> None:
    """Both suites are collected here (a renamed folder would silently skip them otherwise)."""
    assert len(_contact_params()) > 200
    assert len(accounts_suite._params()) > 100
