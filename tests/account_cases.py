"""Checking an account case: records in, expectations about accounts and contacts out.

Shared by the account conformance suite (tests/accounts) and the account examples of
docs/language.md. A case is::

    {"accounts": [...], "contacts": [...], "events": [...], "as_of": "...",
     "errors": "raise" | "collect",
     "expect": {"accounts": {ID: {...}}, "contacts": {ID: {...}},
                "orphans": [ids], "rejected": [[source, text in the reason], ...],
                "error": {"type": "GraphError" | "RecordError", "message": text in it,
                          "field": ..., "source": ..., "record_id": ...}}}

Per result, ``expect`` may give ``total``, ``scores`` (a subset of the models), ``labels`` (a
subset), ``qualified``, ``disqualified``, ``reasons``, and for accounts ``members``,
``eligible``, ``parent``, ``subsidiaries`` and ``explain``: the full list of rows in order, each
a dict of any of ``account model line points rule kind contacts`` (``contacts`` as
``[[id, value], ...]``). Numbers compare with a relative tolerance of 1e-9.
"""

from __future__ import annotations

import math
from typing import Any

import leaddsl

REL_TOL = 1e-9
ABS_TOL = 1e-12
RESULT_KEYS = {"total", "scores", "labels", "qualified", "disqualified", "reasons", "members",
               "eligible", "parent", "subsidiaries", "explain"}
ROW_KEYS = {"account", "model", "line", "points", "rule", "kind", "contacts"}
CASE_KEYS = {"description", "accounts", "contacts", "events", "as_of", "errors", "expect",
             "xfail"}
EXPECT_KEYS = {"accounts", "contacts", "orphans", "rejected", "error"}


def close(actual: object, expected: object) -> bool:
    if isinstance(expected, list):
        return (isinstance(actual, (list, tuple)) and len(actual) == len(expected)
                and all(close(a, e) for a, e in zip(actual, expected, strict=True)))
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and set(actual) == set(expected)
                and all(close(actual[k], v) for k, v in expected.items()))
    if isinstance(expected, bool) or not isinstance(expected, (int, float)):
        return actual == expected
    if isinstance(actual, bool) or not isinstance(actual, (int, float)):
        return False
    return math.isclose(actual, expected, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _row(c: leaddsl.Contribution) -> dict[str, Any]:
    return {"account": c.account, "model": c.model, "line": c.line, "points": c.points,
            "rule": c.rule, "kind": c.kind, "contacts": [list(p) for p in c.contacts]}


def check_result(result: Any, expect: dict[str, Any], where: str) -> None:
    assert set(expect) <= RESULT_KEYS, (where, set(expect) - RESULT_KEYS)
    for key, want in expect.items():
        if key == "explain":
            rows = [_row(c) for c in result.explain()]
            got = [{k: row[k] for k in want_row} for row, want_row in zip(rows, want, strict=False)]
            assert len(rows) == len(want) and close(got, want), (where, "explain", rows)
            total = math.fsum(c.points for c in result.explain())
            assert math.isclose(total, result.total, rel_tol=1e-9, abs_tol=1e-9), (where, total)
            continue
        got = getattr(result, key)
        if key == "scores" or key == "labels":
            got = {k: got[k] for k in want if k in got}
        if isinstance(got, tuple):
            got = list(got)
        assert close(got, want), (where, key, got, want)


def run_case(script: leaddsl.Ruleset, case: dict[str, Any]) -> None:
    assert set(case) <= CASE_KEYS, set(case) - CASE_KEYS
    expect = case["expect"]
    assert expect and set(expect) <= EXPECT_KEYS, set(expect) - EXPECT_KEYS
    engine = leaddsl.Engine(script, as_of=case.get("as_of"))

    def load() -> leaddsl.LoadReport:
        return engine.load(accounts=case.get("accounts", []), contacts=case.get("contacts", []),
                           events=case.get("events", []), errors=case.get("errors", "raise"))

    if "error" in expect:
        assert set(expect) == {"error"}, "a case that fails expects nothing else"
        err = expect["error"]
        kind = getattr(leaddsl, err.get("type", "LeadDSLError"))
        try:
            load()
            engine.accounts()
        except kind as exc:
            assert err.get("message", "") in str(exc), (str(exc), err)
            for attr in ("field", "source", "record_id"):
                if attr in err:
                    assert getattr(exc, attr) == err[attr], (attr, getattr(exc, attr))
        else:
            raise AssertionError(f"expected {kind.__name__}")
        return
    report = load()
    if "orphans" in expect:
        assert list(report.orphans) == expect["orphans"], report.orphans
    if "rejected" in expect:
        got = [(r.source, r.reason) for r in report.rejected]
        assert len(got) == len(expect["rejected"]), got
        for (source, reason), (want_source, want_text) in zip(got, expect["rejected"], strict=True):
            assert source == want_source and want_text in reason, (source, reason)
    for aid, want in expect.get("accounts", {}).items():
        check_result(engine.account(aid), want, f"account {aid}")
    for cid, want in expect.get("contacts", {}).items():
        check_result(engine.contact(cid), want, f"contact {cid}")
