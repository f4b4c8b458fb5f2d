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

    def __init__(self, token: Token, expected: int, inner: int) -> None:
        super().__init__("bad dedent")
        self.token = token
        self.expected = expected  # the enclosing level the line fell short of
        self.inner = inner  # the level of the block it left


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
        inner = self.indent_level[-1]
        while indent < self.indent_level[-1]:
            inner = self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, indent_str, token)
        if indent != self.indent_level[-1]:
            raise _IndentError(token, self.indent_level[-1], inner)


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


def _end_of_script(source: Source, start: int) -> bool:
    """Whether only blanks and comments follow ``start``."""
    rest = source.text[start:]
    return all(not line.strip() or line.lstrip().startswith("#") for line in rest.split("\n"))


def _at_end(source: Source, token: Token) -> bool:
    """Whether the parser ran out of script (Lark's $END borrows the last token's place)."""
    if token.type == "$END":
        return True
    start = min(token.start_pos or 0, len(source.text))
    return token.type == "_DEDENT" and _end_of_script(source, start)


def _end_span(source: Source) -> Span:
    """Just after the last character of the last line that holds something."""
    lines = [line.rstrip("\r") for line in source.text.split("\n")]
    n = len(lines)
    while n > 1 and not lines[n - 1].strip():
        n -= 1
    text = lines[n - 1]
    end = sum(len(x) + 1 for x in lines[: n - 1]) + len(text)
    return Span(end, end, n, len(text) + 1, n, len(text) + 2)


def _token_span(source: Source, token: Token) -> Span:
    start = token.start_pos if token.start_pos is not None else len(source.text)
    line = token.line or 1
    column = token.column or 1
    if token.type == "_INDENT":
        # The indent token borrows the newline's place; point at the indentation itself.
        indent = str(token)
        end = token.end_pos or 0
        row = token.end_line or line
        return Span(end - len(indent), end, row, 1, row, len(indent) + 1)
    if _at_end(source, token):
        return _end_span(source)
    if token.type in ("_NL", "_DEDENT", "$END"):
        # Point at the end of the line the statement was on, not at the next line's indent.
        start = min(start, len(source.text))
        line_text = source.line_text(line)
        return Span(start, start, line, len(line_text) + 1, line, len(line_text) + 2)
    end = token.end_pos if token.end_pos is not None else start + len(str(token))
    return Span(start, end, line, column, line, column + (end - start))


_STATEMENT_STARTS = {"WHEN", "QUALIFY", "SCORE", "CLASSIFY"}
_LISTED = 8  # past this many expected words, the list is summarised


def _expected_words(expected: set[str], words: dict[str, str]) -> str:
    if _STATEMENT_STARTS <= expected:
        return "expected a statement such as 'when', 'qualify', 'disqualify', 'classify' or 'score'"
    if {"NAME", "NOT", "LPAR"} <= expected:
        return "expected a condition, e.g. 'employees >= 200' or 'visited pricing'"
    names = sorted({words.get(e, e) for e in expected if not e.startswith("__")})
    if not names:
        return ""
    if len(names) > _LISTED:
        names = names[: _LISTED - 1] + [f"{len(names) - _LISTED + 1} more"]
    return "expected " + (
        names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    )


def _open_paren(line: str) -> int | None:
    """Column of the last '(' left open in ``line``, outside strings and comments."""
    opened: list[int] = []
    in_string = False
    for column, ch in enumerate(line, 1):
        if in_string:
            in_string = ch != '"'
        elif ch == '"':
            in_string = True
        elif ch == "#":
            break
        elif ch == "(":
            opened.append(column)
        elif ch == ")" and opened:
            opened.pop()
    return opened[-1] if opened else None


_UNITS = ("days", "hours", "weeks")


def _word_at(text: str, pos: int) -> tuple[int, str]:
    """The whole word around ``pos`` (letters, digits, '_' and '-'), with where it starts."""
    start = pos
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_-"):
        start -= 1
    end = pos
    while end < len(text) and (text[end].isalnum() or text[end] in "_-"):
        end += 1
    return start, text[start:end]


def _syntax_diagnostic(source: Source, exc: UnexpectedInput, parser: Lark) -> Diagnostic:
    words = _terminal_words(parser)
    text = source.text
    if isinstance(exc, UnexpectedCharacters):
        pos, line, col = exc.pos_in_stream or 0, exc.line or 1, exc.column or 1
        char = text[pos] if pos < len(text) else ""
        span = Span(pos, pos + 1, line, col, line, col + 1)
        if char == '"':
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            span = Span(pos, end, line, col, line, col + end - pos)
            return make(
                source,
                "syntax",
                "error",
                "this text has no closing quote",
                span,
                "end it with '\"' on the same line",
            )
        hint = {
            "'": 'use double quotes for text: "like this"',
            "&": "write 'and'",
            "|": "write 'or'",
            "!": "write 'not', or '!=' for not equal",
        }.get(char)
        return make(source, "syntax", "error", f"unexpected character {char!r}", span, hint)

    if isinstance(exc, UnexpectedEOF):  # the Indenter ends every script with newlines,
        span = _end_span(source)  # so Lark rarely raises this; kept for safety
        exp = _expected_words(set(exc.expected), words)
        message = "unexpected end of script" + (f"; {exp}" if exp else "")
        return make(source, "syntax", "error", message, span)

    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    expected = set(exc.accepts or exc.expected)
    span = _token_span(source, token)
    start = token.start_pos or 0
    value = str(token)
    if value == "=" and start > 0 and text[start - 1] == "=":
        span = Span(start - 1, start + 1, span.line, span.column - 1, span.line, span.column + 1)
        return make(
            source, "syntax", "error", "unexpected '=='", span, "write '=' to compare (not '==')"
        )
    word_start, word = (
        _word_at(text, start)
        if token.type not in ("_NL", "_INDENT", "_DEDENT", "$END")
        else (start, value)
    )
    if word_start < start and word.startswith(("day", "hour", "week")):
        # 'dayz' lexes as the unit 'day' and a stray 'z': report the word the user wrote.
        col = span.column - (start - word_start)
        span = Span(word_start, word_start + len(word), span.line, col, span.line, col + len(word))
        near = suggest(word, _UNITS)
        return make(
            source,
            "syntax",
            "error",
            f"unknown unit '{word}'; expected days, hours or weeks",
            span,
            f"did you mean '{near}'?" if near else None,
        )
    at_end = _at_end(source, token)
    if token.type == "_NL":
        what = "end of line"
    elif token.type == "_INDENT":
        what = "indented line"
    elif at_end:
        what = "end of script"
    elif token.type in ("_DEDENT", "$END"):
        what = "end of block"
    else:
        what = repr(value)
    message = f"unexpected {what}"
    if token.type != "_INDENT":
        exp = _expected_words(expected, words)
        if exp:
            message += f"; {exp}"
    hint = _hint(source, token, expected, words, span, at_end)
    return make(source, "syntax", "error", message, span, hint)


def _hint(
    source: Source,
    token: Token,
    expected: set[str],
    words: dict[str, str],
    span: Span,
    at_end: bool,
) -> str | None:
    value = str(token)
    if token.type == "NUMBER" and "COLON" in expected:
        return "put ':' before the points"
    if token.type == "_INDENT":
        return "only a block (score, classify, attributes, account) is indented"
    if "RPAR" in expected and token.type in ("_NL", "_DEDENT", "$END"):
        column = _open_paren(source.line_text(span.line))
        if column is not None:
            return f"close the '(' opened at column {column}"
    if at_end and "_INDENT" in expected:
        return "a block needs at least one indented line under its header"
    if token.type == "NAME" or (token.type in words and words[token.type].startswith("'")):
        # A misspelt keyword: compare the word with the keywords that could stand here.
        options = [words[e].strip("'") for e in expected if e in words and words[e].startswith("'")]
        found = suggest(value, options)
        if found and found != value:
            return f"did you mean '{found}'?"
    if token.type == "_NL" and "COLON" in expected:
        line = source.line_text(span.line).strip()
        if line.split(" ", 1)[0] in ("score", "classify", "account", "attributes"):
            return f"a block header ends with ':', e.g. '{line}:'"
        return "a rule needs ':' and points, e.g. 'when opened email: +1'"
    return None


def _indent_diagnostic(source: Source, exc: _IndentError) -> Diagnostic:
    token = exc.token
    line = token.end_line or token.line or 1
    indent = str(token).rsplit("\n", 1)[1]
    start = (token.end_pos or 0) - len(indent)
    span = Span(start, start + max(1, len(indent)), line, 1, line, len(indent) + 1)
    width = len(indent.expandtabs(_BlockIndenter.tab_len))
    return make(
        source,
        "indent",
        "error",
        f"this line is indented {width} spaces, which matches no enclosing block",
        span,
        f"indent it {exc.inner} spaces to stay in the block above, or {exc.expected} to end "
        "the block",
    )
