"""The REPL, driven through its real loop with prompt_toolkit's pipe input."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from leaddsl.repl import COMMANDS, Repl, ReplCompleter

ROOT = Path(__file__).resolve().parent.parent
RULES = Path("examples/rules.lead")
DATA = Path("examples/data")


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the README's session uses paths from the repository root


def session(keys: str) -> str:
    """What the user sees (the REPL's output) after typing ``keys``."""
    out = io.StringIO()
    with create_pipe_input() as inp:
        inp.send_text(keys)
        repl = Repl(out, RULES, DATA)
        repl.run(PromptSession(input=inp, output=DummyOutput()))
    return out.getvalue()


def test_the_readme_session_is_what_the_repl_prints() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```console repl\n(.*?)```", readme, re.S)
    assert block, "the README shows a REPL session"
    lines = block.group(1).splitlines()
    assert lines[0] == "$ leaddsl repl examples/rules.lead --data examples/data"
    commands = [line[len("leaddsl> "):] for line in lines if line.startswith("leaddsl> ")]
    assert commands[-1] == "quit"
    seen = session("".join(c + "\r" for c in commands))
    expected = [line for line in lines[1:] if not line.startswith("leaddsl> ")]
    assert seen.splitlines() == expected


def test_mistakes_print_a_diagnostic_and_the_session_goes_on() -> None:
    seen = session('top contacts 2 where bnad = "hot"\rshwo c001\rshow c999\r'
                   "eval c001 score > 1\rtop accounts two\rshow c001\rquit\r")
    assert "where:1:1: error: unknown attribute 'bnad'" in seen
    assert "did you mean 'band'?" in seen
    assert "error: unknown command 'shwo'; did you mean 'show'?" in seen
    assert "error: no contact or account 'c999'; did you mean 'c299'?" in seen
    assert "error: eval ID: CONDITION" in seen
    assert "error: top takes a number of rows, got 'two'" in seen
    assert seen.rstrip().splitlines()[-1] in ("not qualified", "qualified")  # still answering


def test_multi_line_rules_ingest_and_as_of() -> None:
    seen = session("add\rscore bonus:\r    when job_title contains \"VP\": +5\r\r"
                   "top contacts 1 where bonus > 0\r"
                   'ingest {"id": "r1", "contact": "c221", "action": "submitted", '
                   '"object": "form", "name": "demo-request", "at": "2026-10-31T09:00:00Z"}\r'
                   'ingest {"id": "r1", "contact": "c221", "action": "submitted", '
                   '"object": "form", "name": "demo-request", "at": "2026-10-31T09:00:00Z"}\r'
                   "as-of 2026-06-01\rshow c221\ras-of latest\rquit\r")
    assert "added; 3 models, 4 ladders" in seen
    assert "bonus" in seen.split("added;")[1].splitlines()[1]
    assert "contact c221: qualified False -> True" in seen
    assert "ingested; nothing crossed a threshold" in seen  # the same event again
    assert "as of 2026-06-01T00:00:00+00:00" in seen
    assert "as of 2026-10-31T09:00:00+00:00" in seen


def test_reload_reports_what_moved(tmp_path: Path) -> None:
    rules = tmp_path / "rules.lead"
    rules.write_text((ROOT / RULES).read_text())
    out = io.StringIO()
    repl = Repl(out, rules, ROOT / DATA)
    rules.write_text((ROOT / RULES).read_text().replace(
        "when count of roles >= 3: +10", "when count of roles >= 3: +500"))
    out.seek(0)
    out.truncate()
    repl.execute("reload")
    text = out.getvalue()
    assert text.startswith(f"rules {rules}: 2 models")
    assert re.search(r"#\d+ a\d\d: [\d.]+ -> [\d.]+", text)
    assert repl.engine is not None
    best = repl.engine.top_accounts(1)[0]
    rules.write_text("when oops")
    out.seek(0)
    out.truncate()
    repl.execute("reload")
    assert out.getvalue().startswith(f"{rules}:1:10: error: ")
    out.seek(0)
    out.truncate()
    repl.execute("top accounts 1")  # the last good rules are still loaded
    assert out.getvalue().splitlines()[1].split()[1:3] == [best.id, f"{best.total:.1f}"]


def test_completion_of_commands_ids_and_names() -> None:
    repl = Repl(io.StringIO(), RULES, DATA)
    complete = ReplCompleter(repl)

    def words(text: str) -> list[str]:
        doc = Document(text, len(text))
        return [c.text for c in complete.get_completions(doc, CompleteEvent())]

    assert words("co") == ["committee"]
    assert set(words("")) == set(COMMANDS)
    assert words("committee a0")[:3] == ["a01", "a02", "a03"]
    assert "c159" in words("why c15")
    assert words("top contacts 5 where ban") == ["band"]
    assert "tier" in words("top accounts 3 where ti")
