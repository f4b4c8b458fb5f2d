"""Find the grammar file, build the Lark parser, parse a script to a Lark tree.

Only this module touches Lark's exceptions: every syntax problem leaves as a ParseError whose
diagnostic names the line and column, says what was expected in words, and hints at a fix.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.indenter import Indenter

from .ast import Span
from .diagnostics import Diagnostic, Source, make, suggest
from .errors import LeadDSLError, ParseError

__all__ = ["grammar_path", "build_parser", "parse_tree", "keywords"]

GRAMMAR_FILE = "leaddsl.lark"


def grammar_path() -> Path:
    """The grammar file: inside the installed package, or in the source tree's ``grammar/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammar" / GRAMMAR_FILE, here.parent / "grammar" / GRAMMAR_FILE):
        if candidate.is_file():
            return candidate
    raise LeadDSLError(f"the grammar file {GRAMMAR_FILE} is missing from the installation")


class _IndentError(Exception):
    """A line dedented to no enclosing block's column (Lark's DedentError has no position)."""

    def __init__(self, token: Token, expected: int) -> None:
        super().__init__("bad dedent")
        self.token = token
        self.expected = expected


class _BlockIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def handle_NL(self, token: Token) -> Iterator[Token]:
        if self.paren_level > 0:
            return
        yield token
        indent_str = token.rsplit("\n", 1)[1]
        indent = indent_str.count(" ") + indent_str.count("\t") * self.tab_len
        if indent > self.indent_level[-1]:
            self.indent_level.append(indent)
            yield Token.new_borrow_pos(self.INDENT_type, indent_str, token)
            return
        while indent < self.indent_level[-1]:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, indent_str, token)
        if indent != self.indent_level[-1]:
            raise _IndentError(token, self.indent_level[-1])


def build_parser(strict: bool = False) -> Lark:
    """A new LALR parser for the language. ``strict`` makes Lark refuse any grammar conflict."""
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        postlex=_BlockIndenter(),
        propagate_positions=True,
        maybe_placeholders=True,
        strict=strict,
    )


@functools.cache
def _shared_parser() -> tuple[Lark, threading.Lock]:
    # Building the LALR tables costs far more than a parse, so one parser is kept; its Indenter
    # holds per-parse state, so parses take turns on the lock.
    return build_parser(), threading.Lock()


def parse_tree(source: Source) -> Tree[Token]:
    """Parse a script into Lark's tree, or raise ParseError with one diagnostic."""
    parser, lock = _shared_parser()
    # The grammar ends every statement with a newline; a script need not.
    text = source.text if source.text.endswith("\n") else source.text + "\n"
    try:
        with lock:
            return parser.parse(text)
    except _IndentError as exc:
        diag = _indent_diagnostic(source, exc)
    except UnexpectedInput as exc:
        diag = _syntax_diagnostic(source, exc, parser)
    raise ParseError([diag])


# ---- translating Lark's errors ---------------------------------------------------

# Terminals named in words; keywords and punctuation are quoted from the grammar itself.
_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": 'a quoted text like "pricing"',
    "OP": "a comparison (=, !=, <, <=, >, >=)",
    "_NL": "end of line",
    "_INDENT": "an indented block",
    "_DEDENT": "the end of the block",
    "$END": "end of script",
    "EXACTLY": "'exactly'",
}


def _terminal_words(parser: Lark) -> dict[str, str]:
    words = dict(_WORDS)
    for term in parser.terminals:
        if term.name not in words and term.pattern.type == "str":
            words[term.name] = f"'{term.pattern.value}'"
    return words


def _keywords(parser: Lark) -> frozenset[str]:
    return frozenset(
        t.pattern.value
        for t in parser.terminals
        if t.pattern.type == "str" and t.pattern.value.replace("-", "").isalpha()
    )


def keywords() -> frozenset[str]:
    """Every reserved word of the language (a name can't be one of these)."""
    return _keywords(_shared_parser()[0])


def _token_span(source: Source, token: Token) -> Span:
    start = token.start_pos if token.start_pos is not None else len(source.text)
    line = token.line or 1
    column = token.column or 1
    if token.type in ("_NL", "_INDENT", "_DEDENT", "$END"):
        # Point at the end of the line the statement was on, not at the next line's indent.
        start = min(start, len(source.text))
        line_text = source.line_text(line)
        return Span(start, start, line, len(line_text) + 1, line, len(line_text) + 2)
    end = token.end_pos if token.end_pos is not None else start + len(str(token))
    return Span(start, end, line, column, line, column + (end - start))


def _expected_words(expected: set[str], words: dict[str, str]) -> str:
    names = sorted({words.get(e, e) for e in expected if not e.startswith("__")})
    if not names:
        return ""
    if len(names) > 8:
        names = names[:8] + ["..."]
    return "expected " + (
        names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    )


def _syntax_diagnostic(source: Source, exc: UnexpectedInput, parser: Lark) -> Diagnostic:
    words = _terminal_words(parser)
    if isinstance(exc, UnexpectedCharacters):
        pos, line, col = exc.pos_in_stream or 0, exc.line or 1, exc.column or 1
        char = source.text[pos] if pos < len(source.text) else ""
        span = Span(pos, pos + 1, line, col, line, col + 1)
        hint = {
            "'": 'use double quotes for text: "like this"',
            "&": "write 'and'",
            "|": "write 'or'",
            "!": "write 'not', or '!=' for not equal",
            "=": "write '=' to compare (not '==')",
        }.get(char)
        if char == "=" and pos > 0 and source.text[pos - 1] == "=":
            span = Span(pos - 1, pos + 1, line, col - 1, line, col + 1)
        return make(source, "syntax", "error", f"unexpected character {char!r}", span, hint)

    if isinstance(exc, UnexpectedEOF):
        end = len(source.text)
        lines = source.text.splitlines() or [""]
        span = Span(end, end, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)
        msg = "unexpected end of script"
        exp = _expected_words(set(exc.expected), words)
        return make(source, "syntax", "error", f"{msg}; {exp}" if exp else msg, span)

    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    expected = set(exc.accepts or exc.expected)
    span = _token_span(source, token)
    if token.type == "_NL":
        what = "end of line"
    elif token.type in ("_INDENT",):
        what = "indented line"
    elif token.type in ("_DEDENT", "$END"):
        what = "end of block"
    else:
        what = repr(str(token))
    message = f"unexpected {what}"
    exp = _expected_words(expected, words)
    if exp:
        message += f"; {exp}"
    return make(source, "syntax", "error", message, span, _hint(token, expected, words))


def _hint(token: Token, expected: set[str], words: dict[str, str]) -> str | None:
    value = str(token)
    if token.type == "NUMBER" and "COLON" in expected:
        return "put ':' before the points"
    if token.type == "_INDENT":
        return "only a block (score, classify, attributes, account) is indented"
    if token.type == "OP" and value == "=" and "OP" not in expected and "EQUAL" not in expected:
        return None
    if token.type == "NAME" or token.type in words:
        # A misspelt keyword: compare the word with the keywords that could stand here.
        options = [words[e].strip("'") for e in expected if e in words and words[e].startswith("'")]
        found = suggest(value, options)
        if found and found != value:
            return f"did you mean '{found}'?"
    if token.type == "_NL" and "COLON" in expected:
        return "a rule needs ':' and points, e.g. 'when opened email: +1'"
    return None


def _indent_diagnostic(source: Source, exc: _IndentError) -> Diagnostic:
    token = exc.token
    line = token.end_line or token.line or 1
    indent = str(token).rsplit("\n", 1)[1]
    start = (token.end_pos or 0) - len(indent)
    span = Span(start, start + max(1, len(indent)), line, 1, line, len(indent) + 1)
    return make(
        source,
        "indent",
        "error",
        f"this line's indentation ({len(indent)}) matches no enclosing block",
        span,
        f"indent it as the lines of its block ({exc.expected} columns)",
    )
