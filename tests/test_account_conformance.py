"""The data-driven conformance suite of account scoring: scripts and hand-computed cases.

Layout: ``tests/accounts/<construct>/<name>.lead`` is a rule script with an ``account:`` block,
and ``<name>.json`` next to it holds its cases::

    {"cases": [{"description": "...", "accounts": [...], "contacts": [...], "events": [...],
                "as_of": "...", "errors": "raise" | "collect", "expect": {...}}]}

A case is run by ``account_cases.run_case`` (tests/account_cases.py describes the format of
``expect``). Each case is its own test, with the id ``<construct>/<name>#<description>``.
A case may carry ``"xfail": "ENGINE BUG: ..."``: it is then a strict xfail, so it fails the
suite as soon as the engine is fixed and the mark must go.

Every expected value in these files was computed by hand from the semantics of account scoring,
never pasted from the engine's output; each description says how.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import account_cases  # tests/ is on sys.path under pytest's default import mode
import pytest

import leaddsl

ACCOUNTS = Path(__file__).parent / "accounts"
XFAIL_PREFIX = "ENGINE BUG: "
ERROR_KEYS = {"type", "message", "field", "source", "record_id"}


def _scripts() -> list[Path]:
    return sorted(ACCOUNTS.rglob("*.lead"))


def _case_files() -> list[Path]:
    return sorted(ACCOUNTS.rglob("*.json"))


def _read(json_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json_path.read_text(encoding="utf-8"))
    return data


def _case_id(json_path: Path, description: str) -> str:
    construct = json_path.parent.relative_to(ACCOUNTS).as_posix()
    return f"{construct}/{json_path.stem}#{description}"


def _params() -> list[Any]:
    params = []
    for json_path in _case_files():
        for case in _read(json_path).get("cases", []):
            marks = []
            if "xfail" in case:
                marks.append(pytest.mark.xfail(strict=True, reason=case["xfail"]))
            params.append(pytest.param(json_path, case, marks=marks,
                                       id=_case_id(json_path, case.get("description", ""))))
    return params


@functools.cache
def _ruleset(lead_path: Path) -> leaddsl.Ruleset:
    return leaddsl.load(lead_path)


# ---- the suite's own shape --------------------------------------------------------------


def _check_result_keys(cid: str, what: str, results: Any) -> None:
    assert isinstance(results, dict) and results, (cid, what)
    for rid, want in results.items():
        assert isinstance(want, dict) and want, (cid, what, rid)
        assert set(want) <= account_cases.RESULT_KEYS, \
            (cid, what, rid, set(want) - account_cases.RESULT_KEYS)
        for row in want.get("explain", []):
            assert row and set(row) <= account_cases.ROW_KEYS, (cid, what, rid, row)


def test_suite_layout() -> None:
    """Every script has its cases and every case file its script; ids unique; keys known."""
    scripts = {p.with_suffix("") for p in _scripts()}
    cases = {p.with_suffix("") for p in _case_files()}
    assert scripts, "no account conformance scripts found"
    assert scripts == cases, (f"scripts without cases: {sorted(map(str, scripts - cases))}; "
                              f"cases without a script: {sorted(map(str, cases - scripts))}")
    seen: set[str] = set()
    for json_path in _case_files():
        # One folder per construct: tests/accounts/<construct>/<name>.json.
        assert json_path.parent.parent == ACCOUNTS, json_path
        data = _read(json_path)
        assert set(data) == {"cases"} and data["cases"], json_path
        for case in data["cases"]:
            description = case.get("description")
            assert isinstance(description, str) and description.strip(), (json_path, case)
            cid = _case_id(json_path, description)
            assert cid not in seen, f"duplicate case id {cid}"
            seen.add(cid)
            assert set(case) <= account_cases.CASE_KEYS, \
                (cid, set(case) - account_cases.CASE_KEYS)
            expect = case.get("expect")
            assert isinstance(expect, dict) and expect, (cid, "a case needs an expect")
            assert set(expect) <= account_cases.EXPECT_KEYS, \
                (cid, set(expect) - account_cases.EXPECT_KEYS)
            if "error" in expect:
                assert set(expect) == {"error"}, (cid, "an error case expects nothing else")
                assert expect["error"] and set(expect["error"]) <= ERROR_KEYS, \
                    (cid, set(expect["error"]) - ERROR_KEYS)
            for entry in expect.get("rejected", []):
                assert isinstance(entry, list) and len(entry) == 2, (cid, entry)
            for what in ("accounts", "contacts"):
                if what in expect:
                    _check_result_keys(cid, what, expect[what])
            if "errors" in case:
                assert case["errors"] in ("raise", "collect"), cid
            if "xfail" in case:
                assert case["xfail"].startswith(XFAIL_PREFIX), cid
                assert case["xfail"][len(XFAIL_PREFIX):].strip(), cid


# ---- the cases ------------------------------------------------------------------------------


@pytest.mark.parametrize(("json_path", "case"), _params())
def test_account_case(json_path: Path, case: dict[str, Any]) -> None:
    # Compiled here, not at collection, so a script the engine cannot compile fails (or
    # xfails) its own cases instead of the whole run.
    rules = _ruleset(json_path.with_suffix(".lead"))
    account_cases.run_case(rules, case)
