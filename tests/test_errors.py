"""Error messages: golden caret output, a table of small bad inputs, and record errors.

Golden tests: each tests/errors/<name>.lead must fail to load, and the str() of its ScriptError
must equal tests/errors/<name>.txt. The script is loaded by a relative name from inside
tests/errors, so goldens say ``<name>.lead:3:14: ...`` on every machine.

    LEADDSL_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_errors.py   # rewrite goldens

Regeneration rewrites every golden except the cases in MESSAGE_XFAIL: their .txt holds the
wording we want (not the current output), written by hand. When leaddsl gets the message right,
the case XPASSes and fails (strict): delete its MESSAGE_XFAIL entry, regenerate, review the diff.
Always read a regenerated golden by eye before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import leaddsl
from leaddsl.records import Rejected, read_ndjson

ERRORS = Path(__file__).parent / "errors"
REGEN = os.environ.get("LEADDSL_REGEN_GOLDEN") == "1"

# Cases whose current output is not good enough; the golden holds the proposed output.
MESSAGE_XFAIL: dict[str, str] = {
}


def _golden_cases() -> list[Any]:
    cases = []
    for lead in sorted(ERRORS.glob("*.lead")):
        name = lead.stem
        marks = ([pytest.mark.xfail(strict=True, reason=MESSAGE_XFAIL[name])]
                 if name in MESSAGE_XFAIL else [])
        cases.append(pytest.param(name, id=name, marks=marks))
    return cases


def _load_error(name: str, monkeypatch: pytest.MonkeyPatch) -> leaddsl.ScriptError:
    monkeypatch.chdir(ERRORS)
    with pytest.raises(leaddsl.ScriptError) as info:
        leaddsl.load(f"{name}.lead")
    return info.value


@pytest.mark.parametrize("name", _golden_cases())
def test_golden(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    actual = str(_load_error(name, monkeypatch)) + "\n"
    golden = ERRORS / f"{name}.txt"
    if REGEN and name not in MESSAGE_XFAIL:
        golden.write_bytes(actual.encode("utf-8"))
        return
    assert golden.is_file(), f"no golden for {name}; run with LEADDSL_REGEN_GOLDEN=1 and review"
    assert actual == golden.read_bytes().decode("utf-8")


def test_golden_files_pair_up() -> None:
    leads = {p.stem for p in ERRORS.glob("*.lead")}
    txts = {p.stem for p in ERRORS.glob("*.txt")}
    assert leads == txts or REGEN
    assert set(MESSAGE_XFAIL) <= leads, "an xfail entry names no .lead file"
    for name in txts:
        text = (ERRORS / f"{name}.txt").read_text(encoding="utf-8")
        # Machine-independent: every diagnostic names the script by its bare file name.
        heads = [line for line in text.splitlines() if not line.startswith("  ")]
        assert heads and all(h.startswith(f"{name}.lead:") for h in heads), name


@pytest.mark.parametrize("name", [p.stem for p in sorted(ERRORS.glob("*.lead"))])
def test_check_agrees_with_load(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """check() returns (never raises) exactly the diagnostics load() raises with."""
    error = _load_error(name, monkeypatch)
    text = (ERRORS / f"{name}.lead").read_text(encoding="utf-8")
    assert leaddsl.check(text, filename=f"{name}.lead") == list(error.diagnostics)
    assert error.errors


def test_several_errors_all_reported_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    error = _load_error("several_errors", monkeypatch)
    assert isinstance(error, leaddsl.CheckError)
    assert [(d.line, d.column, d.code) for d in error.errors] == [
        (2, 27, "bad-limit"), (3, 14, "unknown-name"), (6, 5, "no-otherwise"),
        (7, 6, "rule-uses-result")]


def test_unreachable_rung_warning_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    error = _load_error("unreachable_rung_with_error", monkeypatch)
    assert [(d.severity, d.code, d.line, d.column) for d in error.diagnostics] == [
        ("warning", "unreachable-rung", 4, 5), ("error", "unknown-label", 6, 22)]


def test_syntax_errors_are_parse_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(_load_error("missing_colon_before_points", monkeypatch), leaddsl.ParseError)
    assert isinstance(_load_error("unknown_score_model", monkeypatch), leaddsl.CheckError)


# ---- check(): a table of small bad inputs ---------------------------------------------------

LADDER = ("when opened email: +1\nclassify band:\n    hot when score >= 50\n"
          "    cold otherwise\n")
ATTRS = "attributes:\n    employees: number\n    country: text\n"

# (description, source, expected message substring, line, column, severity)
CHECK_TABLE: list[Any] = [
    ("misspelt 'when'", "qualify wen score >= 10", "unexpected 'wen'; expected 'when'", 1, 9,
     "error"),
    ("misspelt modifier", "when opened email: +5 onse", "unexpected 'onse'", 1, 23, "error"),
    ("points spelt out", "when opened email: five", "unexpected 'five'; expected a number", 1, 20,
     "error"),
    ("points missing", "when opened email:", "unexpected end of line; expected a number", 1, 19,
     "error"),
    ("'&&' for and", "qualify when score >= 10 && visited pricing", "unexpected character '&'",
     1, 26, "error"),
    ("missing colon, second line", "when opened email: +1\nwhen clicked email +2",
     "unexpected '+2'", 2, 20, "error"),
    ("CRLF line endings", "when opened email: +1\r\nwhen clicked email +2\r\n", "unexpected '+2'",
     2, 20, "error"),
    ("after a comment and blank lines", "# intro\n\nwhen opened email: +1\n\nqualify wen x",
     "unexpected 'wen'", 5, 9, "error"),
    ("line continuation", "qualify when score >= 1 and \\\n    visited 'pricing'",
     "unexpected character \"'\"", 2, 13, "error"),
    ("'contains' takes text", "when country contains 5: +1",
     'expected a quoted text like "pricing"', 1, 23, "error"),
    ("a tab counts as one column", "score e:\n\twhen opened email: +1 limit 0",
     "a limit must be positive", 2, 24, "error"),
    ("negative limit", "when opened email: +1 limit -5", "a limit must be positive", 1, 23,
     "error"),
    ("zero window", "when visited pricing within 0 days: +1", "a window must be positive",
     1, 29, "error"),
    ("zero half-life", "decay half-life 0 days\nwhen opened email: +1",
     "a half-life must be positive", 1, 17, "error"),
    ("zero expiry", "expire after 0 days\nwhen opened email: +1", "an expiry must be positive",
     1, 14, "error"),
    ("option given twice", "decay half-life 7 days\ndecay half-life 9 days\nwhen opened email: +1",
     "model 'default' already has this option on line 1", 2, 1, "error"),
    ("fractional count", "when opened email: +1\nqualify when visited pricing at least 2.5 times",
     "'at least N times' takes a whole number of 1 or more", 2, 14, "error"),
    ("score compared with text", "when opened email: +1\nqualify when score is \"high\"",
     "'score' is a score (a number); compare it with a number", 2, 14, "error"),
    ("label compared with >=", LADDER + 'qualify when band >= "hot"', "'band' is a label", 5, 14,
     "error"),
    ("label compared with a number", LADDER + "qualify when band = 3",
     "'band' is a label; compare it with text", 5, 21, "error"),
    ("unknown label, nothing close", LADDER + 'qualify when band is "tepid"',
     "'band' has no label 'tepid' (its labels: hot, cold)", 5, 22, "error"),
    ("declared number compared with text", ATTRS + 'when employees = "many": +1',
     "attribute 'employees' is declared number, compared with text", 4, 18, "error"),
    ("text test on a number", ATTRS + 'when employees contains "5": +1',
     "attribute 'employees' is a number", 4, 6, "error"),
    ("unknown attribute, nothing close", ATTRS + "when revenue >= 5: +1",
     "unknown attribute 'revenue'", 4, 6, "error"),
    ("attribute declared twice", "attributes:\n    a: text\n    a: number\nwhen a = \"x\": +1",
     "attribute 'a' is declared twice", 3, 5, "error"),
    ("'exactly' on a number", "when employees >= 5 exactly: +1", "'exactly' applies to text",
     1, 6, "error"),
    ("model named default", "score default:\n    when opened email: +1\nwhen clicked email: +1",
     "'default' is the model of the rules outside any score block", 1, 7, "error"),
    ("model named like a ladder", LADDER + "score band:\n    when clicked email: +1",
     "score model 'band' is already defined as a ladder on line 2", 5, 7, "error"),
    ("unknown model, no attributes block", "score engagement:\n    when opened email: +1\n"
     "when engagment >= 3: +1", "unknown score model 'engagment'", 3, 6, "error"),
    ("unknown ladder in a combined label", LADDER + "classify priority = band + rank of bnad",
     "unknown ladder 'bnad'", 5, 28, "error"),
    ("'gained' on a non-model", "when opened email: +1\n"
     "qualify when engagement gained within 7 days >= 10",
     "'gained' measures a score model, and 'engagement' is not one", 2, 14, "error"),
    ("ladder uses its own label", "when opened email: +1\nclassify band:\n"
     '    hot when band is "hot"\n    cold otherwise', "ladder 'band' cannot use its own label",
     3, 14, "error"),
    ("scoring rule uses disqualified", "when opened email: +1\nwhen disqualified: -5",
     "a scoring rule cannot depend on qualification", 2, 6, "error"),
    ("'any contact' outside an account", "when opened email: +1\n"
     "qualify when any contact is qualified",
     "this test is about an account's contacts; use it in an account block", 2, 14, "error"),
    ("rule in a block, modifier on condition", "score fit:\n"
     "    when employees >= 200: +10 once", "this modifier applies to rules on events", 2, 32,
     "error"),
    ("zero points", "when opened email: +0", "this rule gives 0 points", 1, 1, "warning"),
    ("plural object kind", "when attended webinars: +5",
     "'webinars' reads as an event name, not an object kind", 1, 6, "warning"),
    ("word used as name and object", "when viewed podcast any: +1\nwhen watched podcast: +2",
     "'podcast' reads as an event name here, but line 1 uses it as an object kind", 2, 6,
     "warning"),
    ("same pattern twice", "when opened email: +1\nwhen opened email: +2",
     "same event pattern as line 1", 2, 1, "warning"),
    ("narrower rule replaces broader", "when clicked campaign any: +5\n"
     'when clicked campaign "Q4": +20', "for its events this rule replaces line 1 (+5)", 2, 1,
     "note"),
    ("duplicate label", "when opened email: +1\nclassify band:\n    hot when score >= 50\n"
     "    hot when score >= 20\n    cold otherwise", "label 'hot' already appears on line 3",
     4, 5, "warning"),
    ("account event rule", "score engagement:\n    when opened email: +1\naccount:\n"
     "    when visited pricing: +5", "an account has no events of its own", 4, 10, "error"),
    ("account by unknown model", "score engagement:\n    when opened email: +1\naccount:\n"
     "    score e = sum of contacts by engagment", "'engagment' is not a contact score model",
     4, 15, "error"),
    ("account nested member test", "score engagement:\n    when opened email: +1\naccount:\n"
     "    qualify when any contact where (any contact is qualified)",
     "a where clause tests one contact", 4, 37, "error"),
    ("account decay", "score engagement:\n    when opened email: +1\naccount:\n"
     "    decay half-life 30 days", "account scores come from their contacts", 4, 5, "error"),
    ("account bad rollup", "score engagement:\n    when opened email: +1\naccount:\n"
     "    rollup to parent: summ", "unknown rollup 'summ'", 4, 5, "error"),
    ("account negative weight", "score engagement:\n    when opened email: +1\naccount:\n"
     '    weight role "user" -1', 'the weight of role "user" is negative', 4, 5, "error"),
    ("account duplicate role", "score engagement:\n    when opened email: +1\naccount:\n"
     '    weight role "user" 1, "User" 2', 'role "User" already has a weight', 4, 5, "error"),
    ("account bad top", "score engagement:\n    when opened email: +1\naccount:\n"
     "    score e = sum of top 0 contacts by engagement", "'top N' takes a whole number",
     4, 15, "error"),
    ("account where unknown name", "score engagement:\n    when opened email: +1\naccount:\n"
     "    qualify when any contact where engagment > 3", "unknown score model 'engagment'",
     4, 36, "error"),
    ("account names its own models", "score engagement:\n    when opened email: +1\naccount:\n"
     "    score e = sum of contacts by engagement\n    qualify when engagement >= 3",
     "'engagement' is a contact score model, not something an account has", 5, 18, "error"),
    ("two account blocks", "when opened email: +1\naccount:\n    qualify when score >= 1\n"
     "account:\n    qualify when score >= 2", "a script has one account block", 4, 1, "error"),
    ("account test outside block", "when opened email: +1\nqualify when count of roles >= 2",
     "use it in an account block", 2, 14, "error"),
    pytest.param(
        "indented line", "when opened email: +1\n    when clicked email: +2",
        "unexpected indented line", 2, 1, "error",
        id="indented line"),
    pytest.param(
        "'==' for '='", 'qualify when country == "US"', "unexpected '=='", 1, 22, "error",
        id="'==' for '='"),
    pytest.param(
        "misspelt unit", "expire after 30 dayz\nwhen opened email: +1", "unknown unit 'dayz'",
        1, 17, "error",
        id="misspelt unit"),
    pytest.param(
        "misspelt 'score'", "when opened email: +1\nqualify when scor >= 10", "'scor'", 2, 14,
        "error",
        id="misspelt 'score'"),
]


def _values(row: Any) -> tuple[Any, ...]:
    """The values of a table row, whether a plain tuple or a pytest.param."""
    return tuple(row.values) if isinstance(row, type(pytest.param())) else tuple(row)


def _params(table: list[Any]) -> list[Any]:
    """Rows as pytest.params named by their description (marks kept)."""
    return [row if isinstance(row, type(pytest.param())) else pytest.param(*row, id=row[0])
            for row in table]


@pytest.mark.parametrize(("description", "source", "expected", "line", "column", "severity"),
                         _params(CHECK_TABLE))
def test_check_table(description: str, source: str, expected: str, line: int, column: int,
                     severity: str) -> None:
    found = leaddsl.check(source, filename="t.lead")
    hits = [d for d in found if expected in d.message]
    assert len(hits) == 1, (description, [str(d) for d in found])
    (d,) = hits
    assert (d.line, d.column, d.severity) == (line, column, severity), str(d)
    assert d.line_text == source.splitlines()[line - 1]
    assert str(d).startswith(f"t.lead:{line}:{column}: {severity}: ")


GARBAGE = ["", "\n", "   ", "\t\n\t", "#", ":", ";", '"', "'", "(((((((", ")]", "\x00", "é",
           "when", "when :", "score", "score:", "classify", "classify x:\n", "qualify when",
           "when opened email: +1\n\n\n  \n# c", "\\", "when opened email: +1\\",
           "attributes:\n    x", "account:\n    score s = sum of contacts by x",
           "\r\n\r\n", "when a b c d e f g h: +1", "when (" * 40 + "x" + ")" * 40 + ": +1"]


def _table_sources() -> list[str]:
    return [_values(row)[1] for row in CHECK_TABLE]


@pytest.mark.parametrize("source", GARBAGE + _table_sources())
def test_check_never_raises(source: str) -> None:
    found = leaddsl.check(source)
    assert isinstance(found, list)
    for d in found:
        assert isinstance(d, leaddsl.Diagnostic)
        assert d.line >= 1 and d.column >= 1
        assert d.severity in ("error", "warning", "note")
        str(d)


def test_check_never_raises_on_token_soup() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    words = ["when", "qualify", "disqualify", "classify", "score", "attributes", "account", ":",
             "\n", "\n    ", "\t", "opened", "email", "+1", "-5", "0", "limit", "once", "per",
             "name", "within", "3", "days", "at", "least", "times", '"x"', "'", "=", "==", ">=",
             "and", "or", "not", "(", ")", "[", "]", ",", "any", "contact", "count", "of",
             "contacts", "is", "in", "otherwise", "hot", "band", "rank", "+", "gained", ";",
             "#c", "\\\n", "employees", "qualified", "exactly", "decay", "half-life"]

    @hypothesis.settings(max_examples=300, deadline=None, database=None)
    @hypothesis.given(st.lists(st.sampled_from(words), max_size=30))
    def run(tokens: list[str]) -> None:
        for d in leaddsl.check(" ".join(tokens)):
            assert d.line >= 1 and d.column >= 1
            str(d)

    run()


# ---- record errors ----------------------------------------------------------------------------

RULES = "when employees >= 200: +10\nwhen opened email: +1\n"


def _event(**fields: Any) -> dict[str, Any]:
    return {"id": "e1", "action": "opened", "object": "email", "at": "2026-01-01T00:00:00Z",
            **fields}


# (description, contact, events, source, record_id, field, str())
RECORD_TABLE: list[Any] = [
    ("missing action", {"id": "c1"}, [{"id": "e1", "at": "2026-01-01T00:00:00Z"}],
     "events[0]", "e1", "action", "events[0] (id 'e1'), field 'action': missing action"),
    ("unparseable time", {"id": "c1"}, [_event(), _event(id="e2", at="yesterday")],
     "events[1]", "e2", "at",
     "events[1] (id 'e2'), field 'at': cannot read 'yesterday' as an ISO 8601 time"),
    ("missing time, no id", {"id": "c1"}, [{"action": "opened"}],
     "events[0]", None, "at", "events[0], field 'at': missing time"),
    ("non-numeric employees", {"id": "c1", "employees": "lots"}, [],
     "contact", "c1", "employees", "contact (id 'c1'), field 'employees': expected a number, "
     "got 'lots'"),
    ("event of another contact", {"id": "c1"}, [_event(contact="c2")],
     "events[0]", "e1", "contact",
     "events[0] (id 'e1'), field 'contact': event of contact 'c2' given for contact 'c1'"),
    ("contact without id", {"name": "Ada"}, [], "contact", None, "id",
     "contact, field 'id': missing id"),
    ("event not an object", {"id": "c1"}, [_event(), "opened email"], "events[1]", None, None,
     "events[1]: an event must be an object, got str"),
]


@pytest.mark.parametrize(("description", "contact", "events", "source", "record_id", "field",
                          "message"), _params(RECORD_TABLE))
def test_record_errors(description: str, contact: dict[str, Any], events: list[Any],
                       source: str, record_id: str | None, field: str | None,
                       message: str) -> None:
    rules = leaddsl.compile(RULES)
    with pytest.raises(leaddsl.RecordError) as info:
        rules.score(contact, events)
    err = info.value
    assert (err.source, err.record_id, err.field) == (source, record_id, field)
    assert str(err) == message
    assert isinstance(err, leaddsl.LeadDSLError)


def test_numeric_text_is_accepted_where_rules_compare_numbers() -> None:
    rules = leaddsl.compile(RULES)
    assert rules.score({"id": "c1", "employees": "250"}).total == 10.0


def test_employees_text_is_fine_when_no_rule_compares_it_with_a_number() -> None:
    rules = leaddsl.compile("when opened email: +1")
    assert rules.score({"id": "c1", "employees": "lots"}, [_event()]).total == 1.0


def test_event_source_name_is_used() -> None:
    rules = leaddsl.compile(RULES)
    with pytest.raises(leaddsl.RecordError) as info:
        rules.score({"id": "c1"}, [_event(), _event(id="e2", action=None)], source="batch.ndjson")
    assert info.value.source == "batch.ndjson[1]"
    assert str(info.value) == "batch.ndjson[1] (id 'e2'), field 'action': missing action"


def test_bad_as_of_names_the_argument() -> None:
    rules = leaddsl.compile(RULES)
    with pytest.raises(leaddsl.RecordError) as info:
        rules.score({"id": "c1"}, [_event()], as_of="soon")
    assert (info.value.source, info.value.field) == ("as_of", "as_of")
    assert "cannot read 'soon' as an ISO 8601 time" in str(info.value)


# ---- NDJSON reading --------------------------------------------------------------------------


def _ndjson(tmp_path: Path) -> Path:
    path = tmp_path / "events.ndjson"
    lines = [
        json.dumps(_event(id="e1")),
        '{"id": "e2", "action": "opened",',  # truncated
        "",
        json.dumps(_event(id="e3")),
        "not json at all",
        "   ",
        json.dumps(_event(id="e4")),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_ndjson_stops_at_a_bad_line_naming_file_and_line(tmp_path: Path) -> None:
    path = _ndjson(tmp_path)
    reader = read_ndjson(path)
    source, record = next(reader)
    assert (source, record["id"]) == (f"{path}:1", "e1")
    with pytest.raises(leaddsl.RecordError) as info:
        next(reader)
    assert info.value.source == f"{path}:2"
    assert (info.value.record_id, info.value.field) == (None, None)
    assert str(info.value).startswith(f"{path}:2: not valid JSON (")


def test_read_ndjson_collects_every_bad_line_and_keeps_going(tmp_path: Path) -> None:
    path = _ndjson(tmp_path)
    rejected: list[Rejected] = []
    good = list(read_ndjson(path, rejected))
    assert [(s, r["id"]) for s, r in good] == [
        (f"{path}:1", "e1"), (f"{path}:4", "e3"), (f"{path}:7", "e4")]
    assert [r.source for r in rejected] == [f"{path}:2", f"{path}:5"]
    assert all(r.reason.startswith(f"{r.source}: not valid JSON (") for r in rejected)
    assert rejected[1].record == "not json at all\n"
