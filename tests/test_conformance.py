"""The data-driven conformance suite: scripts and hand-computed expectations (tests/conformance).

Layout: ``tests/conformance/<construct>/<name>.lead`` is a rule script and ``<name>.json`` next to
it holds its cases::

    {"cases": [{"description": "...", "as_of": "2026-04-01T00:00:00Z",
                "contact": {"id": "c1", ...}, "events": [{...}, ...],
                "expect": {...}}]}

``contact`` defaults to ``{"id": "c1"}`` (and gets ``"id": "c1"`` when it has no ``id`` key);
``events`` defaults to ``[]``; ``as_of`` is passed to ``Ruleset.score`` when present.
``expect`` may hold any of:

- ``total``: number; ``scores``: {model: number} (a subset of the models);
- ``labels``: {ladder: label} (a subset); ``qualified``, ``disqualified``: booleans;
- ``reasons``: the full list of disqualification reasons, in order;
- ``explain``: the full list of ``explain()`` rows in order, each a dict holding any of
  ``line``, ``points``, ``rule``, ``model``, ``events`` (event ids, in the order explain gives);
- ``missing``: one entry per qualify line: either the list of ``[term text, holds]`` pairs, or
  ``{"holds": bool, "terms": [[text, holds], ...]}`` (either key may be left out);
- ``error``: the case raises RecordError; ``{"field": ..., "source": ..., "record_id": ...}``
  (any subset) must match its attributes.

Numbers compare with a relative tolerance of 1e-9 (and an absolute one of 1e-12, for zeros).
A case may carry ``"xfail": "ENGINE BUG: ..."``: it is then a strict xfail.

Every expected value in these files was computed by hand from the language's semantics, never
pasted from the engine's output; each description says how.
"""

from __future__ import annotations

import functools
import json
import math
import pprint
from pathlib import Path
from typing import Any

import pytest

import leaddsl

CONFORMANCE = Path(__file__).parent / "conformance"
REL_TOL = 1e-9
ABS_TOL = 1e-12
CASE_KEYS = {"description", "as_of", "contact", "events", "expect", "xfail"}
EXPECT_KEYS = {"total", "scores", "labels", "qualified", "disqualified", "reasons", "explain",
               "missing", "error"}
ROW_KEYS = {"line", "points", "rule", "model", "events"}


def _scripts() -> list[Path]:
    return sorted(CONFORMANCE.rglob("*.lead"))


def _case_files() -> list[Path]:
    return sorted(CONFORMANCE.rglob("*.json"))


def _case_id(json_path: Path, description: str) -> str:
    construct = json_path.parent.relative_to(CONFORMANCE).as_posix()
    return f"{construct}/{json_path.stem}#{description}"


def _params() -> list[Any]:
    params = []
    for json_path in _case_files():
        data = json.loads(json_path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            marks = []
            if "xfail" in case:
                marks.append(pytest.mark.xfail(strict=True, reason=case["xfail"]))
            params.append(pytest.param(json_path, case, marks=marks,
                                       id=_case_id(json_path, case["description"])))
    return params


@functools.cache
def _ruleset(lead_path: Path) -> leaddsl.Ruleset:
    return leaddsl.load(lead_path)


def _close(actual: object, expected: object) -> bool:
    if isinstance(expected, bool) or not isinstance(expected, (int, float)):
        return actual == expected
    if isinstance(actual, bool) or not isinstance(actual, (int, float)):
        return False
    return math.isclose(actual, expected, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _inputs(case: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    contact = dict(case.get("contact", {}))
    contact.setdefault("id", "c1")
    return contact, list(case.get("events", [])), case.get("as_of")


# ---- the suite's own shape --------------------------------------------------------------


def test_suite_layout() -> None:
    """Every script has its cases and every case file its script; ids are unique; keys known."""
    scripts = {p.with_suffix("") for p in _scripts()}
    cases = {p.with_suffix("") for p in _case_files()}
    assert scripts, "no conformance scripts found"
    assert scripts == cases, (f"scripts without cases: {sorted(map(str, scripts - cases))}; "
                              f"cases without a script: {sorted(map(str, cases - scripts))}")
    seen: set[str] = set()
    for json_path in _case_files():
        data = json.loads(json_path.read_text(encoding="utf-8"))
        assert set(data) == {"cases"} and data["cases"], json_path
        for case in data["cases"]:
            cid = _case_id(json_path, case["description"])
            assert cid not in seen, f"duplicate case id {cid}"
            seen.add(cid)
            assert set(case) <= CASE_KEYS, (cid, set(case) - CASE_KEYS)
            assert case["expect"] and set(case["expect"]) <= EXPECT_KEYS, \
                (cid, set(case["expect"]) - EXPECT_KEYS)
            for row in case["expect"].get("explain", []):
                assert row and set(row) <= ROW_KEYS, (cid, row)
            if "xfail" in case:
                assert case["xfail"].startswith("ENGINE BUG: "), cid


@pytest.mark.parametrize("lead_path", _scripts(),
                         ids=lambda p: p.relative_to(CONFORMANCE).as_posix())
def test_script_compiles(lead_path: Path) -> None:
    """Every conformance script compiles (warnings are allowed, errors are not)."""
    rules = _ruleset(lead_path)
    assert all(d.severity != "error" for d in rules.diagnostics)


# ---- the cases ------------------------------------------------------------------------------


def _report(lead_path: Path, case: dict[str, Any], problems: list[str],
            result: leaddsl.ContactResult | None, error: BaseException | None) -> str:
    contact, events, as_of = _inputs(case)
    out = [f"case {_case_id(lead_path.with_suffix('.json'), case['description'])}", ""]
    out += ["mismatches:", *(f"  - {p}" for p in problems), ""]
    out += [f"script {lead_path.name}:"]
    out += [f"  {n:3d} | {line}" for n, line in enumerate(lead_path.read_text().splitlines(), 1)]
    out += ["", f"as_of: {as_of!r}", f"contact: {contact!r}", "events:"]
    out += [f"  {e!r}" for e in events]
    out += ["", "expected:", pprint.pformat(case["expect"], indent=2, width=100), ""]
    if error is not None:
        out += [f"raised: {type(error).__name__}: {error}"]
        for attr in ("source", "record_id", "field"):
            if hasattr(error, attr):
                out.append(f"  .{attr} = {getattr(error, attr)!r}")
    if result is not None:
        out += ["actual:", pprint.pformat(result.to_dict(), indent=2, width=100), "", "explain():"]
        for row in result.explain():
            out.append(f"  {row.describe()}  events={list(row.events)}")
        out += ["", "missing():"]
        for line in result.missing():
            out.append(f"  line {line.line} holds={line.holds}: "
                       f"{[(c.text, c.holds) for c in line.conditions]}")
    return "\n".join(out)


def _compare(expect: dict[str, Any], result: leaddsl.ContactResult) -> list[str]:
    problems: list[str] = []
    if "total" in expect and not _close(result.total, expect["total"]):
        problems.append(f"total: expected {expect['total']!r}, got {result.total!r}")
    for model, want in expect.get("scores", {}).items():
        if model not in result.scores:
            problems.append(f"scores[{model!r}]: no such model (models: {list(result.scores)})")
        elif not _close(result.scores[model], want):
            problems.append(f"scores[{model!r}]: expected {want!r}, got {result.scores[model]!r}")
    for ladder, want in expect.get("labels", {}).items():
        got = result.labels.get(ladder)
        if got != want:
            problems.append(f"labels[{ladder!r}]: expected {want!r}, got {got!r}")
    for flag in ("qualified", "disqualified"):
        if flag in expect and getattr(result, flag) is not expect[flag]:
            problems.append(f"{flag}: expected {expect[flag]!r}, got {getattr(result, flag)!r}")
    if "reasons" in expect and list(result.reasons) != expect["reasons"]:
        problems.append(f"reasons: expected {expect['reasons']!r}, got {list(result.reasons)!r}")
    if "explain" in expect:
        rows = result.explain()
        want_rows = expect["explain"]
        if len(rows) != len(want_rows):
            problems.append(f"explain: expected {len(want_rows)} rows, got {len(rows)}: "
                            f"{[(r.line, r.points) for r in rows]}")
        for i, (row, want) in enumerate(zip(rows, want_rows, strict=False)):
            for key, value in want.items():
                got = list(getattr(row, key)) if key == "events" else getattr(row, key)
                if not _close(got, value):
                    problems.append(f"explain[{i}].{key}: expected {value!r}, got {got!r}")
    if "missing" in expect:
        lines = result.missing()
        want_lines = expect["missing"]
        if len(lines) != len(want_lines):
            problems.append(f"missing: expected {len(want_lines)} qualify lines, got {len(lines)}")
        for i, (line, want) in enumerate(zip(lines, want_lines, strict=False)):
            terms = want.get("terms") if isinstance(want, dict) else want
            got_terms = [[c.text, c.holds] for c in line.conditions]
            if terms is not None and got_terms != terms:
                problems.append(f"missing[{i}] terms: expected {terms!r}, got {got_terms!r}")
            if isinstance(want, dict) and "holds" in want and line.holds is not want["holds"]:
                problems.append(f"missing[{i}].holds: expected {want['holds']!r}, "
                                f"got {line.holds!r}")
    # The notes promise that explain() adds up to the total exactly (math.fsum).
    rows_sum = math.fsum(r.points for r in result.explain())
    if rows_sum != result.total:
        problems.append(f"fsum(explain points) = {rows_sum!r} != total {result.total!r}")
    return problems


@pytest.mark.parametrize(("json_path", "case"), _params())
def test_case(json_path: Path, case: dict[str, Any]) -> None:
    lead_path = json_path.with_suffix(".lead")
    rules = _ruleset(lead_path)
    contact, events, as_of = _inputs(case)
    expect = case["expect"]
    if "error" in expect:
        try:
            result = rules.score(contact, events, as_of)
        except leaddsl.RecordError as exc:
            problems = [f"error.{key}: expected {want!r}, got {getattr(exc, key)!r}"
                        for key, want in expect["error"].items() if getattr(exc, key) != want]
            if problems:
                pytest.fail(_report(lead_path, case, problems, None, exc), pytrace=False)
            return
        pytest.fail(_report(lead_path, case, ["expected a RecordError, none was raised"], result,
                            None), pytrace=False)
    result = rules.score(contact, events, as_of)
    problems = _compare(expect, result)
    if problems:
        pytest.fail(_report(lead_path, case, problems, result, None), pytrace=False)
