"""docs/language.md, docs/embedding.md, docs/closed-loop.md, docs/scaling.md and README.md,
run as tests: no code in the docs goes untested.

The convention (docs/language.md follows it; README.md may use it too):

```lead
<a rule script that compiles>
```
    Compiled with ``leaddsl.compile(text, filename="rules.lead")``. In docs/language.md it must
    be followed, before the next ``lead`` block, by at least one ``json example`` block (in the
    README an example is optional: a bare ``lead`` block there only has to compile).

```json example
{"contact": {...}, "events": [...], "as_of": "...", "expect": {...}}
```
    (An example with an ``accounts`` key is an account example instead: records of accounts,
    contacts and events, checked as tests/account_cases.py describes.)
    One case for the nearest ``lead`` block above it. ``contact`` defaults to ``{"id": "c1"}``,
    ``events`` to ``[]``, ``as_of`` to ``null`` (the latest event). ``expect`` holds any of:

    - ``total``, ``scores``, ``labels``, ``qualified``, ``disqualified``, ``reasons``,
      ``as_of`` (ISO text, ``result.as_of.isoformat()``): compared with the ContactResult.
      Numbers are compared with a relative tolerance of 1e-9; dicts must match exactly.
    - ``explain``: one object per row of ``result.explain()``, in order; each gives any of
      ``model rule line points before_cap raw capped events kind``.
    - ``missing``: one object per line of ``result.missing()``; each gives any of
      ``line text holds conditions`` (``conditions`` as ``[[text, holds], ...]``) and
      ``failing`` (the texts of the failing terms).
    - ``error``: scoring must raise; ``{"type": "RecordError", "message": str(error),
      "field": ...}`` (``field`` optional). Nothing else may be expected then.

```text diagnostics
<the warnings and notes of the lead block above, exactly as rendered, one blank line apart>
```
    Optional, but in docs/language.md required whenever the script compiles with diagnostics:
    the reference never shows a script whose warnings it hides.

```lead error
<a script that does not compile>
```
    Must raise ``leaddsl.ScriptError`` (filename "rules.lead"); the very next block is a
    ``text`` block holding ``str(error)`` verbatim (required in docs/language.md).

```python
...
```
    Run. A block with ``>>>`` prompts is a doctest (its output is checked); any other block is
    executed. Blocks of one file run in order in one namespace, from the repository root, so a
    README tutorial may build on its earlier blocks. Python blocks of both files share one
    parameter list, so a README without python blocks adds zero cases (nothing is skipped).

Other blocks (``json`` without ``example``, ``text``, ``sh``) are illustration only. Test ids
are the file, the nearest heading and the index of the case under that heading.

Engine bugs found by the docs are listed in KNOWN_ENGINE_BUGS (test id -> reason) and run as
strict xfails, so fixing the bug turns the test red until the entry is removed.
"""

from __future__ import annotations

import doctest
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import account_cases  # tests/ is on sys.path under pytest's default import mode
import attrs
import pytest

import leaddsl

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = ROOT / "docs" / "language.md"
README = ROOT / "README.md"
EMBEDDING = ROOT / "docs" / "embedding.md"
CLOSED_LOOP = ROOT / "docs" / "closed-loop.md"
SCALING = ROOT / "docs" / "scaling.md"
FILENAME = "rules.lead"

# test id -> "ENGINE BUG: ..." for examples where the engine disagrees with the documented meaning.
KNOWN_ENGINE_BUGS: dict[str, str] = {}


# ---- reading markdown ------------------------------------------------------------------------


@attrs.frozen
class Block:
    info: str  # the fence's info string, e.g. "lead", "json example", "lead error"
    text: str
    line: int  # 1-based line of the opening fence
    heading: str


_FENCE = re.compile(r"^(`{3,})\s*(.*?)\s*$")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def read_blocks(path: Path) -> list[Block]:
    """Every fenced block of a markdown file, with the heading it sits under."""
    if not path.is_file():
        return []
    blocks: list[Block] = []
    heading = path.name
    fence: str | None = None
    info = ""
    start = 0
    body: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if fence is None:
            m = _FENCE.match(line)
            if m:
                fence, info, start, body = m.group(1), m.group(2), n, []
                continue
            h = _HEADING.match(line)
            if h:
                heading = h.group(1)
        elif line.strip() == fence:
            blocks.append(Block(info, "\n".join(body) + ("\n" if body else ""), start, heading))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"{path.name}: the block opened on line {start} is never closed"
    return blocks


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "top"


@attrs.frozen
class Lead:
    """A lead block with what follows it in the doc."""

    path: Path
    block: Block
    examples: tuple[Block, ...]
    diagnostics: Block | None
    error_text: Block | None

    @property
    def is_error(self) -> bool:
        return self.block.info.split() == ["lead", "error"]


def group_leads(blocks: list[Block], path: Path = Path("page.md")) -> list[Lead]:
    leads: list[Lead] = []
    current: dict[str, Any] | None = None

    def close() -> None:
        if current is not None:
            leads.append(
                Lead(
                    path,
                    current["block"],
                    tuple(current["examples"]),
                    current["diagnostics"],
                    current["error_text"],
                )
            )

    for i, block in enumerate(blocks):
        words = block.info.split()
        if words[:1] == ["lead"]:
            close()
            current = {"block": block, "examples": [], "diagnostics": None, "error_text": None}
            if words == ["lead", "error"]:
                nxt = blocks[i + 1] if i + 1 < len(blocks) else None
                if nxt is not None and nxt.info == "text":
                    current["error_text"] = nxt
        elif words == ["json", "example"]:
            assert current is not None, f"line {block.line}: an example before any lead block"
            current["examples"].append(block)
        elif words == ["text", "diagnostics"]:
            assert current is not None, f"line {block.line}: diagnostics before any lead block"
            assert current["diagnostics"] is None, f"line {block.line}: a second diagnostics block"
            current["diagnostics"] = block
    close()
    return leads


class _Ids:
    """Test ids: file, heading, index of the case under that heading."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, path: Path, heading: str) -> str:
        key = f"{path.name}:{_slug(heading)}"
        self.seen[key] = self.seen.get(key, 0) + 1
        return f"{key}-{self.seen[key]}"


def _param(case: Any, case_id: str) -> Any:
    reason = KNOWN_ENGINE_BUGS.get(case_id)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(case, id=case_id, marks=marks)


DOC_BLOCKS = read_blocks(LANGUAGE)
DOC_LEADS = group_leads(DOC_BLOCKS, LANGUAGE)
README_BLOCKS = read_blocks(README)
EMBEDDING_BLOCKS = read_blocks(EMBEDDING)
CLOSED_LOOP_BLOCKS = read_blocks(CLOSED_LOOP)
SCALING_BLOCKS = read_blocks(SCALING)
# The README's lead blocks run with the reference's; an empty README adds no case.
ALL_LEADS = DOC_LEADS + group_leads(README_BLOCKS, README) + group_leads(EMBEDDING_BLOCKS,
                                                                        EMBEDDING)


def _example_cases() -> Iterator[Any]:
    ids = _Ids()
    for lead in ALL_LEADS:
        if lead.is_error:
            continue
        for ex in lead.examples:
            yield _param((lead, ex), ids(lead.path, ex.heading))


def _error_cases() -> Iterator[Any]:
    ids = _Ids()
    for lead in ALL_LEADS:
        if lead.is_error:
            yield _param(lead, ids(lead.path, lead.block.heading) + "-error")


def _script_cases() -> Iterator[Any]:
    ids = _Ids()
    for lead in ALL_LEADS:
        if not lead.is_error:
            yield _param(lead, ids(lead.path, lead.block.heading) + "-script")


def _code_cases(
    files: tuple[tuple[Path, list[Block]], ...] = (
        (LANGUAGE, DOC_BLOCKS),
        (README, README_BLOCKS),
        (EMBEDDING, EMBEDDING_BLOCKS),
        (CLOSED_LOOP, CLOSED_LOOP_BLOCKS),
        (SCALING, SCALING_BLOCKS),
    ),
) -> Iterator[Any]:
    """Python blocks of the reference, the README, the embedding and scaling guides."""
    for path, blocks in files:
        ids = _Ids()
        pythons = [b for b in blocks if b.info.split()[:1] == ["python"]]
        for k, block in enumerate(pythons):
            yield _param((path, pythons[: k + 1]), ids(path, block.heading))


# ---- comparing ----------------------------------------------------------------------------


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected if isinstance(expected, bool) else False
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and math.isclose(
            actual, expected, rel_tol=1e-9, abs_tol=1e-12
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(_same(actual[k], v) for k, v in expected.items())
        )
    if isinstance(expected, list):
        actual = list(actual) if isinstance(actual, tuple) else actual
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_same(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected)


_RESULT_KEYS = {"total", "scores", "labels", "qualified", "disqualified", "reasons", "as_of"}
_EXPLAIN_KEYS = {"model", "rule", "line", "points", "before_cap", "raw", "capped", "events", "kind"}
_MISSING_KEYS = {"line", "text", "holds", "conditions", "failing"}
_CASE_KEYS = {"contact", "events", "as_of", "expect"}


def _actual(result: leaddsl.ContactResult, expect: dict[str, Any]) -> dict[str, Any]:
    """The result, shaped like the expectation (only the keys it names)."""
    out: dict[str, Any] = {}
    for key in expect:
        if key == "as_of":
            out[key] = None if result.as_of is None else result.as_of.isoformat()
        elif key in ("scores", "labels"):
            out[key] = dict(getattr(result, key))
        elif key == "reasons":
            out[key] = list(result.reasons)
        elif key == "explain":
            rows = result.explain()
            want = expect[key]
            out[key] = [
                {
                    k: (list(getattr(row, k)) if k == "events" else getattr(row, k))
                    for k in (want[i] if i < len(want) else {"rule": None})
                }
                for i, row in enumerate(rows)
            ]
        elif key == "missing":
            lines = result.missing()
            want = expect[key]
            shaped = []
            for i, line in enumerate(lines):
                row: dict[str, Any] = {}
                for k in want[i] if i < len(want) else {"text": None}:
                    if k == "conditions":
                        row[k] = [[c.text, c.holds] for c in line.conditions]
                    elif k == "failing":
                        row[k] = [c.text for c in line.failing]
                    else:
                        row[k] = getattr(line, k)
                shaped.append(row)
            out[key] = shaped
        else:
            out[key] = getattr(result, key)
    return out


def _check_keys(case: dict[str, Any], where: str) -> None:
    assert set(case) <= _CASE_KEYS, f"{where}: unknown keys {set(case) - _CASE_KEYS}"
    expect = case.get("expect")
    assert isinstance(expect, dict) and expect, f"{where}: an example needs a non-empty 'expect'"
    allowed = _RESULT_KEYS | {"explain", "missing", "error"}
    assert set(expect) <= allowed, f"{where}: unknown expect keys {set(expect) - allowed}"
    if "error" in expect:
        assert set(expect) == {"error"}, f"{where}: 'error' is expected alone"
    for row in expect.get("explain", ()):
        extra = set(row) - _EXPLAIN_KEYS
        assert not extra, f"{where}: unknown explain keys {extra}"
    for row in expect.get("missing", ()):
        extra = set(row) - _MISSING_KEYS
        assert not extra, f"{where}: unknown missing keys {extra}"


def _render(diagnostics: Any) -> str:
    return "\n\n".join(str(d) for d in diagnostics)


# ---- the tests ------------------------------------------------------------------------------


def test_the_reference_exists_and_has_examples() -> None:
    assert LANGUAGE.is_file(), "docs/language.md is missing"
    assert sum(len(lead.examples) for lead in DOC_LEADS) >= 40
    assert any(lead.is_error for lead in DOC_LEADS)


def test_every_lead_block_is_tested() -> None:
    """No untested code: each lead block has an example, or (lead error) its error text."""
    untested = []
    for lead in DOC_LEADS:
        where = f"docs/language.md:{lead.block.line} ({lead.block.heading})"
        words = lead.block.info.split()
        if words not in (["lead"], ["lead", "error"]):
            untested.append(f"{where}: unknown fence '{lead.block.info}'")
        elif lead.is_error:
            if lead.error_text is None:
                untested.append(f"{where}: 'lead error' without the text block of its error")
            if lead.examples or lead.diagnostics:
                untested.append(f"{where}: 'lead error' cannot have examples")
        elif not lead.examples:
            untested.append(f"{where}: no 'json example' block")
    assert not untested, "\n".join(untested)


@pytest.mark.parametrize("lead", list(_script_cases()))
def test_script_compiles_with_the_diagnostics_shown(lead: Lead) -> None:
    rules = leaddsl.compile(lead.block.text, filename=FILENAME)
    if lead.diagnostics is None and lead.path != LANGUAGE:
        return  # the README need not show warnings; the reference must
    shown = lead.diagnostics.text.rstrip("\n") if lead.diagnostics else ""
    assert _render(rules.diagnostics) == shown, (
        "the doc must show exactly the warnings and notes the script gets "
        f"({lead.path.name}:{lead.block.line})"
    )


@pytest.mark.parametrize("case", list(_example_cases()))
def test_example(case: tuple[Lead, Block]) -> None:
    lead, block = case
    script = lead.block
    where = f"{lead.path.name}:{block.line}"
    data = json.loads(block.text)
    if "accounts" in data:  # an account example: the format of tests/account_cases.py
        account_cases.run_case(leaddsl.compile(script.text, filename=FILENAME), data)
        return
    _check_keys(data, where)
    rules = leaddsl.compile(script.text, filename=FILENAME)
    contact = data.get("contact", {"id": "c1"})
    events = data.get("events", [])
    expect = data["expect"]
    if "error" in expect:
        want = expect["error"]
        with pytest.raises(getattr(leaddsl, want["type"])) as info:
            rules.score(contact, events, as_of=data.get("as_of"))
        assert str(info.value) == want["message"]
        if "field" in want:
            assert info.value.field == want["field"]
        return
    result = rules.score(contact, events, as_of=data.get("as_of"))
    actual = _actual(result, expect)
    rows = "\n".join(row.describe() for row in result.explain())
    assert _same(actual, expect), (
        f"{where}\nscript:\n{script.text}\nexpected: {expect}\nactual:   {actual}\nexplain:\n{rows}"
    )


@pytest.mark.parametrize("lead", list(_error_cases()))
def test_error_example(lead: Lead) -> None:
    with pytest.raises(leaddsl.ScriptError) as info:
        leaddsl.compile(lead.block.text, filename=FILENAME)
    if lead.error_text is not None or lead.path == LANGUAGE:
        assert lead.error_text is not None, "the reference shows every error it provokes"
        assert str(info.value) == lead.error_text.text.rstrip("\n")


@pytest.mark.parametrize("case", list(_code_cases()))
def test_code_block(case: tuple[Path, list[Block]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A python block, after the blocks of its file that come before it."""
    path, blocks = case
    monkeypatch.chdir(ROOT)
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for block in blocks:
        name = f"{path.name}:{block.line}"
        if any(line.lstrip().startswith(">>>") for line in block.text.splitlines()):
            test = doctest.DocTestParser().get_doctest(
                block.text, namespace, name, str(path), block.line
            )
            runner = doctest.DocTestRunner(
                optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
            )
            out: list[str] = []
            runner.run(test, out=out.append, clear_globs=False)
            assert not runner.failures, "".join(out)
            namespace = test.globs
        else:
            exec(compile(block.text, name, "exec"), namespace)  # noqa: S102 - our own docs


def test_block_reader_sees_headings_and_fences(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# A\n\n```lead\nwhen x: +1\n```\n\n## B\n\n```json example\n{}\n```\n"
        "```python\n# not a heading\n```\n",
        encoding="utf-8",
    )
    blocks = read_blocks(page)
    assert [(b.info, b.heading, b.line) for b in blocks] == [
        ("lead", "A", 3),
        ("json example", "B", 9),
        ("python", "B", 12),
    ]
    (lead,) = group_leads(blocks)
    assert len(lead.examples) == 1
    assert read_blocks(tmp_path / "absent.md") == []


def test_a_readme_without_code_adds_no_case(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n```sh\nmake test\n```\n", encoding="utf-8")
    assert list(_code_cases(((readme, read_blocks(readme)),))) == []
    assert group_leads(read_blocks(readme), readme) == []
