"""Script text -> Ruleset: parse, check, compile; the front door of compile, check and load."""

from __future__ import annotations

from pathlib import Path

from .ast import Span
from .checks import run_checks
from .compiler import compile_plan
from .diagnostics import Diagnostic, Source, make
from .errors import CheckError, LeadDSLError, ParseError, ScriptError
from .ruleset import Ruleset
from .scope import build_scope
from .syntax import parse

__all__ = ["check", "compile", "load"]


def check(text: str, filename: str = "<script>") -> list[Diagnostic]:
    """Every problem in a script (errors, warnings and notes), sorted by position. Never raises
    for a bad script.

    Example:
        >>> [d.message for d in check("qualify when engagment >= 1\\nscore engagement:\\n"
        ...                           "    when opened email: +1")]
        ["unknown score model 'engagment'"]
    """
    source = Source(text, filename)
    try:
        script = parse(source)
        return run_checks(script, build_scope(script), source)
    except ScriptError as exc:
        return list(exc.diagnostics)
    except RecursionError:
        return [_too_deep(source)]


def compile(text: str, filename: str = "<script>") -> Ruleset:  # noqa: A001 - the public name
    """Compile a rule script into a Ruleset.

    Args:
        text: the script.
        filename: the name diagnostics use (``rules.lead:3:14: error: ...``).

    Returns:
        An immutable Ruleset; its ``diagnostics`` keep the warnings and notes.

    Raises:
        ParseError: the text is not valid syntax.
        CheckError: the script has semantic errors; ``.diagnostics`` lists all of them.

    Example:
        >>> rules = compile("when unsubscribed: -10")
        >>> rules.models
        ('default',)
    """
    if not isinstance(text, str):
        raise LeadDSLError(f"a script is text, got {type(text).__name__}")
    source = Source(text, filename)
    try:
        script = parse(source)
        scope = build_scope(script)
        found = run_checks(script, scope, source)
        if any(d.is_error for d in found):
            raise CheckError(found)
        return Ruleset(compile_plan(script, scope, source), tuple(found))
    except RecursionError:
        raise ParseError([_too_deep(source)]) from None


def _too_deep(source: Source) -> Diagnostic:
    # The passes recurse over the tree; thousands of nested parentheses or 'not's exhaust
    # Python's stack long before any real script would.
    return make(
        source,
        "too-deep",
        "error",
        "this script nests conditions too deeply to read",
        Span(0, 0, 1, 1, 1, 2),
        "split the condition into ladders or simpler rules",
    )


def load(path: str | Path) -> Ruleset:
    """Compile the script in a file; diagnostics name the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LeadDSLError(f"cannot read rule script {str(path)!r}: {exc.strerror}") from None
    return compile(text, filename=str(path))
