"""The grammar builds without conflicts, and the wheel carries it so installs work anywhere."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from leaddsl.grammar import build_parser, grammar_path, keywords

ROOT = Path(__file__).resolve().parent.parent


def test_grammar_has_no_conflicts() -> None:
    # strict=True makes Lark refuse shift/reduce conflicts and colliding terminals.
    build_parser(strict=True)


def test_grammar_file_is_the_repository_one_in_a_checkout() -> None:
    assert grammar_path().read_text() == (ROOT / "grammar" / "leaddsl.lark").read_text()


def test_keywords_include_the_statement_words() -> None:
    assert {"when", "score", "qualify", "disqualify", "classify", "otherwise"} <= keywords()


def test_wheel_ships_the_grammar_and_scores_outside_the_repo(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("leaddsl-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "leaddsl/grammar/leaddsl.lark" in names
        grammar = zf.read("leaddsl/grammar/leaddsl.lark").decode()
        zf.extractall(tmp_path / "site")
    assert grammar == (ROOT / "grammar" / "leaddsl.lark").read_text()
    # Import the unpacked wheel from a directory with no grammar/ beside it.
    code = (
        "import leaddsl, leaddsl.grammar as g; "
        "print(g.grammar_path()); "
        "print(leaddsl.compile('when opened email: +1').models)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": ""},
    ).stdout
    found, models = out.split()
    assert Path(found) == tmp_path / "site" / "leaddsl" / "grammar" / "leaddsl.lark"
    assert models == "('default',)"
