"""Script text (or its AST) -> the script's canonical text, which parses back to an equal AST.

Comments: the AST has none, so ``format_script`` writes none; ``format`` puts the comments of
the text it was given back (see ``_render``): a comment at the end of a statement's last line
stays there, after two spaces; one on a line of its own stays in front of the statement that
follows it, indented like it, or at the end of the block above when it is indented deeper than
what follows (a commented-out rule). Limits: a comment inside a statement written over several
lines (within brackets or parentheses) moves to a line of its own before the statement, and
the column alignment of end-of-line comments is not kept.

The canonical style:

- 4-space indentation in blocks; one statement per line (the one-line ``;`` form is split up).
- A blank line around every block (score, classify, attributes, account), and between
  neighbouring statements of different kinds (rules and model options count as one kind).
  Other blank lines are dropped, except next to comments: a blank line before a comment, or
  between comments and the statement they precede, is kept (one at most).
- Points are always signed (``+5``, ``-10``, ``+2.5``); numbers never carry a needless ``.0``
  and are written without an exponent (the grammar has none).
- Strings are re-quoted with escapes (``\\"``, ``\\\\``, ``\\n``, ``\\t``).
- ``x is 5`` / ``x = 5`` keep the style they were written in (``Compare.style``).
- Rule modifiers in a fixed order: limit, once / once per name, within, additive.
- Ladder labels are padded so that ``when`` / ``otherwise`` line up; a label is written bare
  when it is a plain name and not a keyword, quoted otherwise.
- Parentheses only where precedence (or < and < not) needs them, and always around a compound
  or event test after ``where``, which takes a single contact test.
- The text ends with exactly one newline (a script with no statements and no comments formats
  to the empty string).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable
from decimal import Decimal

import attrs

from . import ast as A
from .diagnostics import Source
from .grammar import keywords
from .syntax import parse

__all__ = ["format", "format_script"]

INDENT = "    "

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def format(text: str, filename: str = "<script>") -> str:
    """Parse a script's text and return it in canonical form, keeping its comments.

    Args:
        text: the script.
        filename: the name errors are reported under.

    Returns:
        The canonical text.

    Raises:
        ParseError: the text is not a valid script.

    Example:
        >>> format("when opened email: 1; when unsubscribed: -10.0  # bye")
        'when opened email: +1\\nwhen unsubscribed: -10  # bye\\n'
    """
    return _render(_statements(parse(Source(text, filename)).statements, 0), text)


def format_script(script: A.Script, comments_from: str | None = None) -> str:
    """The canonical text of a script's AST; ends with one newline unless the script is empty.

    ``comments_from`` is the text the AST was parsed from: its comments are kept, placed by
    the nodes' spans (so a changed copy made with ``attrs.evolve`` keeps them too).

    Raises:
        ValueError: the AST holds something the syntax cannot express (an empty block, an
            ``and`` with no items, a non-finite number).
    """
    return _render(_statements(script.statements, 0), comments_from)


# ---- statements ------------------------------------------------------------------


@attrs.frozen
class _Out:
    """One output line, and the source lines of the node it came from (for comments)."""

    depth: int
    text: str
    first: int
    last: int
    column: int  # 0-based, where the node started in the source
    header: bool = False  # a block's `NAME:` line


_Lines = list[_Out | None]  # None: a blank line

_BLOCKS = (A.ScoreBlock, A.Classify, A.Attributes, A.AccountBlock)


def _out(depth: int, text: str, span: A.Span, header: bool = False) -> _Out:
    last = span.line if header else span.end_line
    return _Out(depth, text, span.line, last, span.column - 1, header)


def _kind(stmt: A.Statement) -> str:
    match stmt:
        case A.Rule() | A.Decay() | A.Expire() | A.ModelAdditive():
            return "model"
        case _:
            return type(stmt).__name__


def _statements(items: Iterable[A.Statement], depth: int) -> _Lines:
    lines: _Lines = []
    previous: A.Statement | None = None
    for stmt in items:
        if previous is not None and (
            isinstance(previous, _BLOCKS)
            or isinstance(stmt, _BLOCKS)
            or _kind(previous) != _kind(stmt)
        ):
            lines.append(None)
        lines.extend(_statement(stmt, depth))
        previous = stmt
    return lines


def _block(header: _Out, body: _Lines, what: str) -> _Lines:
    if not body:
        raise ValueError(f"an empty {what} block cannot be written")
    return [header, *body]


def _statement(stmt: A.Statement, depth: int) -> _Lines:
    inner = depth + 1
    match stmt:
        case A.ScoreBlock(name=name, items=items, span=span):
            body: _Lines = [_out(inner, _model_item(i), i.span) for i in items]
            return _block(_out(depth, f"score {name}:", span, True), body, "score")
        case A.Classify(name=name, rungs=rungs, span=span):
            header = _out(depth, f"classify {name}:", span, True)
            return _block(header, _ladder(rungs, inner), "classify")
        case A.Attributes(decls=decls, span=span):
            body = [_out(inner, f"{d.name}: {d.type}", d.span) for d in decls]
            return _block(_out(depth, "attributes:", span, True), body, "attributes")
        case A.AccountBlock(items=items, span=span):
            header = _out(depth, "account:", span, True)
            return _block(header, _statements(items, inner), "account")
    return [_out(depth, _line(stmt), stmt.span)]


def _line(stmt: A.Statement) -> str:
    match stmt:
        case A.Rule() | A.Decay() | A.Expire() | A.ModelAdditive():
            return _model_item(stmt)
        case A.Qualify(condition=cond):
            return f"qualify when {_condition(cond)}"
        case A.Disqualify(reason=None, condition=cond):
            return f"disqualify when {_condition(cond)}"
        case A.Disqualify(reason=str(reason), condition=cond):
            return f"disqualify {_string(reason)} when {_condition(cond)}"
        case A.Combine(name=name, parts=parts):
            if not parts:
                raise ValueError(f"classify {name} = ... needs at least one part")
            return f"classify {name} = " + " + ".join(_part(p) for p in parts)
        case A.Objects(names=names):
            if not names:
                raise ValueError("objects: needs at least one name")
            return "objects: " + ", ".join(names)
        case A.Weight(roles=roles):
            if not roles:
                raise ValueError("weight role needs at least one role")
            return "weight role " + ", ".join(f"{_string(r)} {_number(w)}" for r, w in roles)
        case A.Rollup(mode=mode):
            return f"rollup to parent: {mode}"
        case A.AggregateScore(name=name, aggregate=agg):
            return f"score {name} = {_aggregate(agg)}"
    raise TypeError(f"not a statement: {stmt!r}")


def _model_item(item: A.Statement) -> str:
    match item:
        case A.Rule(condition=cond, points=points, modifiers=mods):
            text = f"when {_condition(cond)}: {_points(points)}"
            for mod in sorted(mods, key=_modifier_rank):
                text += " " + _modifier(mod)
            return text
        case A.Decay(half_life=d):
            return f"decay half-life {_duration(d)}"
        case A.Expire(after=d):
            return f"expire after {_duration(d)}"
        case A.ModelAdditive():
            return "additive"
    return _line(item)


def _modifier_rank(mod: A.Modifier) -> int:
    match mod:
        case A.Limit():
            return 0
        case A.Once() | A.OncePerName():
            return 1
        case A.Within():
            return 2
    return 3


def _modifier(mod: A.Modifier) -> str:
    match mod:
        case A.Limit(value=value):
            return f"limit {_number(value)}"
        case A.Once():
            return "once"
        case A.OncePerName():
            return "once per name"
        case A.Within(duration=d):
            return f"within {_duration(d)}"
        case A.Additive():
            return "additive"
    raise TypeError(f"not a rule modifier: {mod!r}")


def _ladder(rungs: tuple[A.Rung, ...], depth: int) -> _Lines:
    labels = [_label(r.label) for r in rungs]
    width = max((len(label) for label in labels), default=0)
    lines: _Lines = []
    for label, rung in zip(labels, rungs, strict=True):
        tail = "otherwise" if rung.condition is None else f"when {_condition(rung.condition)}"
        lines.append(_out(depth, f"{label.ljust(width)} {tail}", rung.span))
    return lines


def _part(part: A.LabelPart | A.RankPart | A.TextPart) -> str:
    match part:
        case A.LabelPart(name=name):
            return name
        case A.RankPart(name=name):
            return f"rank of {name}"
        case A.TextPart(text=text):
            return _string(text)
    raise TypeError(f"not a classify part: {part!r}")


# ---- conditions --------------------------------------------------------------------

# Binding strength: `or` binds loosest, then `and`, then `not`; everything else is an atom.
_OR, _AND, _NOT, _ATOM = 1, 2, 3, 4

# What a `where` clause takes without parentheses (the grammar's `member` rule, minus `not`).
_MEMBERS = (
    A.Compare,
    A.InList,
    A.TextTest,
    A.Presence,
    A.Velocity,
    A.Inactive,
    A.QualifiedRef,
    A.DisqualifiedRef,
)


def _precedence(cond: A.Condition) -> int:
    match cond:
        case A.Or(items=items) if len(items) != 1:
            return _OR
        case A.And(items=items) if len(items) != 1:
            return _AND
        case A.Or(items=(only,)) | A.And(items=(only,)):
            return _precedence(only)
        case A.Not():
            return _NOT
    return _ATOM


def _condition(cond: A.Condition, needs: int = _OR) -> str:
    text = _bare(cond)
    return f"({text})" if _precedence(cond) < needs else text


def _bare(cond: A.Condition) -> str:
    match cond:
        case A.Or(items=items) | A.And(items=items) if not items:
            raise ValueError(f"{type(cond).__name__.lower()} with no items cannot be written")
        case A.Or(items=(only,)) | A.And(items=(only,)):
            return _bare(only)
        case A.Or(items=items):
            return " or ".join(_condition(item, _AND) for item in items)
        case A.And(items=items):
            return " and ".join(_condition(item, _NOT) for item in items)
        case A.Not(item=item):
            return "not " + _condition(item, _NOT)
        case A.Compare(subject=subject, op=op, value=value, exact=exact, style=style):
            if style == "is" and op in ("=", "!="):
                middle = "is" if op == "=" else "is not"
            else:
                middle = op
            return f"{_subject(subject)} {middle} {_literal(value)}{_exactly(exact)}"
        case A.InList(subject=subject, values=values, negated=negated, exact=exact):
            listed = ", ".join(_literal(v) for v in values)
            middle = "not in" if negated else "in"
            return f"{_subject(subject)} {middle} [{listed}]{_exactly(exact)}"
        case A.TextTest(subject=subject, kind=kind, value=value, exact=exact):
            verb = {"contains": "contains", "starts": "starts with", "ends": "ends with"}[kind]
            return f"{_subject(subject)} {verb} {_literal(value)}{_exactly(exact)}"
        case A.Presence(subject=subject, present=present):
            return f"{_subject(subject)} is {'present' if present else 'missing'}"
        case A.EventTest():
            return _event(cond)
        case A.Velocity(subject=subject, within=d, op=op, value=value):
            return f"{_subject(subject)} gained within {_duration(d)} {op} {_literal(value)}"
        case A.Inactive(within=d):
            return f"inactive for {_duration(d)}"
        case A.QualifiedRef():
            return "qualified"
        case A.DisqualifiedRef():
            return "disqualified"
        case A.AggregateTest(aggregate=agg, op=op, value=value):
            return f"{_aggregate(agg)} {op} {_literal(value)}"
        case A.AnyContact(where=None, qualified=True):
            return "any contact is qualified"
        case A.AnyContact(where=None):
            raise ValueError("'any contact' needs a where clause or 'is qualified'")
        case A.AnyContact(where=where, qualified=qualified):
            return f"any contact{_where(where)}" + (" is qualified" if qualified else "")
        case A.AllContacts(where=where):
            return f"all contacts{_where(where)}"
    raise TypeError(f"not a condition: {cond!r}")


def _event(event: A.EventTest) -> str:
    if not event.words:
        raise ValueError("an event test needs at least one word")
    text = " ".join(event.words)
    if event.name is not None:
        text += " " + _string(event.name)
    elif event.any_name:
        text += " any"
    if event.at_least is not None:
        text += f" at least {_number(event.at_least)} {'time' if event.at_least == 1 else 'times'}"
    if event.within is not None:
        text += f" within {_duration(event.within)}"
    return text


def _where(cond: A.Condition | None) -> str:
    return "" if cond is None else " where " + _member(cond)


def _member(cond: A.Condition) -> str:
    match cond:
        case A.Not(item=item):
            return "not " + _member(item)
        case A.Or(items=(only,)) | A.And(items=(only,)):
            return _member(only)
        case _ if isinstance(cond, _MEMBERS):
            return _bare(cond)
    return f"({_bare(cond)})"


def _aggregate(agg: A.Aggregate | A.CountContacts | A.CountRoles) -> str:
    match agg:
        case A.Aggregate(fn=fn, by=by, top=top, where=where):
            top_text = "" if top is None else f"top {_number(top)} "
            return f"{fn} of {top_text}contacts{_where(where)} by {by}"
        case A.CountContacts(where=where):
            return f"count of contacts{_where(where)}"
        case A.CountRoles(where=where):
            return f"count of roles{_where(where)}"
    raise TypeError(f"not an aggregate: {agg!r}")


def _subject(subject: A.Subject) -> str:
    return "score" if isinstance(subject, A.Total) else subject.name


def _exactly(exact: bool) -> str:
    return " exactly" if exact else ""


# ---- tokens -----------------------------------------------------------------------


def _literal(lit: A.Literal) -> str:
    value = lit.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _string(value)
    return _number(value)


def _number(value: float) -> str:
    """Plain decimal digits (the grammar has no exponent), no needless `.0`; round-trips."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be written as a number")
    if value == 0:
        return "0"
    return f"{Decimal(repr(float(value))).normalize():f}"


def _points(value: float) -> str:
    return ("-" if value < 0 else "+") + _number(abs(value))


def _duration(d: A.Duration) -> str:
    return f"{_number(d.amount)} {d.unit}"


_ESCAPE = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"})


def _string(text: str) -> str:
    return '"' + text.translate(_ESCAPE) + '"'


def _label(label: str) -> str:
    """A ladder label: bare when it is a plain name, quoted otherwise."""
    if _NAME.match(label) and label not in keywords():
        return label
    return _string(label)


# ---- output and comments ----------------------------------------------------------------


@attrs.frozen
class _Comment:
    line: int
    column: int  # 0-based
    alone: bool  # nothing but blanks before it on its line
    text: str


def _comments(text: str) -> list[_Comment]:
    """The comments of a script that parsed: every `#` outside a string, to the end of line."""
    found: list[_Comment] = []
    line, start, code, i = 1, 0, False, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':  # a string: well formed, since the text parsed
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            code = True
        elif ch == "#":
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            found.append(_Comment(line, i - start, not code, text[i:end].rstrip()))
            i = end
            continue
        elif ch == "\n":
            line, start, code = line + 1, i + 1, False
        elif not ch.isspace():
            code = True
        i += 1
    return found


def _render(lines: _Lines, source: str | None) -> str:
    """Join the lines; with the source text, put its comments back next to their statements.

    A comment on the last line of a statement stays at its end (after two spaces). A comment
    on a line of its own goes before the statement it was in or in front of, indented like it;
    but one indented deeper than that statement, after a block's last line, stays with the
    block (a commented-out rule, say). A blank line the source had before a comment, or
    between comments and their statement, is kept; other blank lines are canonical.
    """
    comments = [] if source is None else _comments(source)
    src = [] if source is None else source.split("\n")

    def blank_before(line: int) -> bool:
        return 2 <= line <= len(src) + 1 and not src[line - 2].strip()

    # Output lines are in source order, so the lines around a comment are found by bisection.
    entries = [(i, out) for i, out in enumerate(lines) if out is not None]
    firsts = [out.first for _, out in entries]
    before: dict[int, list[_Comment]] = {}
    at_end: dict[int, list[_Comment]] = {}  # on the same line
    after: dict[int, list[tuple[int, _Comment]]] = {}  # on lines of their own, with a depth
    alone: list[_Comment] = []  # a script of comments only
    fronted: set[int] = set()  # gaps where a comment went in front of the next statement
    for comment in comments:
        k = bisect.bisect_right(firsts, comment.line)  # entries[k:] start below the comment
        nxt = entries[k] if k < len(entries) else None
        if k and entries[k - 1][1].last >= comment.line:  # inside a statement (or at its end)
            i, out = entries[k - 1]
            same_line = not comment.alone and comment.line == out.last
            (at_end if same_line else before).setdefault(i, []).append(comment)
            continue
        if k and k not in fronted and (nxt is None or comment.column > nxt[1].column):
            # Deeper than what follows: it belongs to the end of the block above, at the depth
            # of the nearest line above that starts at or left of it.
            depth = next(
                (
                    entries[j][1].depth
                    for j in range(k - 1, -1, -1)
                    if entries[j][1].column <= comment.column
                ),
                0,
            )
            if nxt is None or depth > nxt[1].depth:
                after.setdefault(entries[k - 1][0], []).append((depth, comment))
                continue
        if nxt is not None:
            before.setdefault(nxt[0], []).append(comment)
            fronted.add(k)  # so later comments of this gap follow it: order is kept
        else:
            alone.append(comment)

    text: list[str] = []
    last = "start"  # what the previous output line was: start, blank, header, code, comment

    def blank() -> None:
        nonlocal last
        if last in ("code", "comment"):
            text.append("")
            last = "blank"

    def own_line(depth: int, comment: _Comment) -> None:
        nonlocal last
        if blank_before(comment.line):
            blank()
        text.append(INDENT * depth + comment.text)
        last = "comment"

    for i, line in enumerate(lines):
        if line is None:
            blank()
            continue
        for comment in before.get(i, ()):
            own_line(line.depth, comment)
        if i in before and blank_before(line.first):
            blank()
        tail = "".join("  " + c.text for c in at_end.get(i, ()))
        text.append(INDENT * line.depth + line.text + tail)
        last = "header" if line.header else "code"
        for depth, comment in after.get(i, ()):
            own_line(depth, comment)
    for comment in alone:
        own_line(0, comment)
    return "\n".join(text) + "\n" if text else ""
