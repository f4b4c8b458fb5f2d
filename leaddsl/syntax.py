"""Lark parse tree -> AST (leaddsl.ast). Tokens become str/float here; no Lark type goes further.

The transformer never raises (Lark would wrap it in VisitError): anything odd but parseable is
kept in the tree for the checks to report with a proper diagnostic.
"""

from __future__ import annotations

from typing import Any

from lark import Token, Transformer, v_args

from . import ast as A
from .diagnostics import Source
from .grammar import parse_tree

__all__ = ["parse", "unquote"]

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def unquote(text: str) -> str:
    """The value of a double-quoted string token."""
    body = text[1:-1]
    if "\\" not in body:
        return body
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _tok_span(tok: Token) -> A.Span:
    return A.Span(
        tok.start_pos or 0,
        tok.end_pos or 0,
        tok.line or 1,
        tok.column or 1,
        tok.end_line or tok.line or 1,
        tok.end_column or tok.column or 1,
    )


def _span(meta: Any) -> A.Span:
    if getattr(meta, "empty", True):
        return A.NO_SPAN
    return A.Span(
        meta.start_pos, meta.end_pos, meta.line, meta.column, meta.end_line, meta.end_column
    )


def _subject(node: Any) -> A.Subject:
    if isinstance(node, Token):
        return A.Name(str(node), _tok_span(node))
    return node  # type: ignore[no-any-return]


def _exact(tok: Token | None) -> bool:
    return tok is not None


def _flatten(cls: type[A.And] | type[A.Or], items: tuple[Any, ...]) -> tuple[Any, ...]:
    # (a and b) and c means a and b and c: keep one flat node so layout never changes the tree.
    out: list[Any] = []
    for item in items:
        out.extend(item.items if isinstance(item, cls) else (item,))
    return tuple(out)


@v_args(inline=True, meta=True)
class _ToAst(Transformer[Token, A.Script]):
    # ---- structure ----
    def start(self, meta: Any, *statements: Any) -> A.Script:
        return A.Script(statements)

    def score_block(self, meta: Any, name: Token, *items: Any) -> A.ScoreBlock:
        return A.ScoreBlock(str(name), items, _span(meta), _tok_span(name))

    def account_block(self, meta: Any, *items: Any) -> A.AccountBlock:
        return A.AccountBlock(items, _span(meta))

    def classify_block(self, meta: Any, name: Token, *rungs: A.Rung) -> A.Classify:
        return A.Classify(str(name), rungs, _span(meta), _tok_span(name))

    def rung(self, meta: Any, label: Token, condition: A.Condition) -> A.Rung:
        return A.Rung(_label(label), condition, _span(meta))

    def otherwise(self, meta: Any, label: Token) -> A.Rung:
        return A.Rung(_label(label), None, _span(meta))

    def combine(self, meta: Any, name: Token, *parts: Any) -> A.Combine:
        return A.Combine(str(name), parts, _span(meta), _tok_span(name))

    def part_label(self, meta: Any, name: Token) -> A.LabelPart:
        return A.LabelPart(str(name), _tok_span(name))

    def part_rank(self, meta: Any, name: Token) -> A.RankPart:
        return A.RankPart(str(name), _span(meta))

    def part_text(self, meta: Any, text: Token) -> A.TextPart:
        return A.TextPart(unquote(str(text)), _tok_span(text))

    def attributes_block(self, meta: Any, *decls: A.AttributeDecl) -> A.Attributes:
        return A.Attributes(decls, _span(meta))

    def attribute(self, meta: Any, name: Token, type_: Token) -> A.AttributeDecl:
        return A.AttributeDecl(str(name), str(type_), _span(meta), _tok_span(type_))

    def objects(self, meta: Any, *names: Token) -> A.Objects:
        return A.Objects(tuple(str(n) for n in names), _span(meta))

    def aggregate_score(
        self, meta: Any, name: Token, aggregate: A.AggregateExpr
    ) -> A.AggregateScore:
        return A.AggregateScore(str(name), aggregate, _span(meta))

    def weight(self, meta: Any, *pairs: tuple[str, float]) -> A.Weight:
        return A.Weight(pairs, _span(meta))

    def role_weight(self, meta: Any, role: Token, value: Token) -> tuple[str, float]:
        return (unquote(str(role)), float(value))

    def rollup(self, meta: Any, mode: Token) -> A.Rollup:
        return A.Rollup(str(mode), _span(meta))

    # ---- rules ----
    def rule(self, meta: Any, condition: A.Condition, points: Token, *mods: Any) -> A.Rule:
        return A.Rule(condition, float(points), mods, _span(meta))

    def limit(self, meta: Any, value: Token) -> A.Limit:
        return A.Limit(float(value), _span(meta))

    def once(self, meta: Any, _tok: Token) -> A.Once:
        return A.Once(_span(meta))

    def once_per_name(self, meta: Any, *_toks: Token) -> A.OncePerName:
        return A.OncePerName(_span(meta))

    def within(self, meta: Any, duration: A.Duration) -> A.Within:
        return A.Within(duration, _span(meta))

    def additive(self, meta: Any, _tok: Token) -> A.Additive:
        return A.Additive(_span(meta))

    def decay(self, meta: Any, duration: A.Duration) -> A.Decay:
        return A.Decay(duration, _span(meta))

    def expire(self, meta: Any, duration: A.Duration) -> A.Expire:
        return A.Expire(duration, _span(meta))

    def model_additive(self, meta: Any, _tok: Token) -> A.ModelAdditive:
        return A.ModelAdditive(_span(meta))

    def duration(self, meta: Any, amount: Token, unit: Token) -> A.Duration:
        return A.Duration(float(amount), str(unit), _span(meta))

    def unit(self, meta: Any, tok: Token) -> Token:
        return tok

    def qualify(self, meta: Any, condition: A.Condition) -> A.Qualify:
        return A.Qualify(condition, _span(meta))

    def disqualify(self, meta: Any, reason: Token | None, condition: A.Condition) -> A.Disqualify:
        return A.Disqualify(
            None if reason is None else unquote(str(reason)), condition, _span(meta)
        )

    # ---- conditions ----
    def or_expr(self, meta: Any, *items: A.Condition) -> A.Or:
        return A.Or(_flatten(A.Or, items), _span(meta))

    def and_expr(self, meta: Any, *items: A.Condition) -> A.And:
        return A.And(_flatten(A.And, items), _span(meta))

    def not_(self, meta: Any, item: A.Condition) -> A.Not:
        return A.Not(item, _span(meta))

    def compare(
        self, meta: Any, subject: Any, op: Token, value: A.Literal, ex: Token | None
    ) -> A.Compare:
        return A.Compare(_subject(subject), str(op), value, _exact(ex), "op", _span(meta))

    def is_(self, meta: Any, subject: Any, value: A.Literal, ex: Token | None) -> A.Compare:
        return A.Compare(_subject(subject), "=", value, _exact(ex), "is", _span(meta))

    def is_not(self, meta: Any, subject: Any, value: A.Literal, ex: Token | None) -> A.Compare:
        return A.Compare(_subject(subject), "!=", value, _exact(ex), "is", _span(meta))

    def in_(
        self, meta: Any, subject: Any, values: tuple[A.Literal, ...], ex: Token | None
    ) -> A.InList:
        return A.InList(_subject(subject), values, False, _exact(ex), _span(meta))

    def not_in(
        self, meta: Any, subject: Any, values: tuple[A.Literal, ...], ex: Token | None
    ) -> A.InList:
        return A.InList(_subject(subject), values, True, _exact(ex), _span(meta))

    def _text(
        self, meta: Any, kind: str, subject: Any, value: Token, ex: Token | None
    ) -> A.TextTest:
        lit = A.Literal(unquote(str(value)), _tok_span(value))
        return A.TextTest(_subject(subject), kind, lit, _exact(ex), _span(meta))

    def contains(self, meta: Any, subject: Any, value: Token, ex: Token | None) -> A.TextTest:
        return self._text(meta, "contains", subject, value, ex)

    def starts_with(self, meta: Any, subject: Any, value: Token, ex: Token | None) -> A.TextTest:
        return self._text(meta, "starts", subject, value, ex)

    def ends_with(self, meta: Any, subject: Any, value: Token, ex: Token | None) -> A.TextTest:
        return self._text(meta, "ends", subject, value, ex)

    def missing(self, meta: Any, subject: Any) -> A.Presence:
        return A.Presence(_subject(subject), False, _span(meta))

    def present(self, meta: Any, subject: Any) -> A.Presence:
        return A.Presence(_subject(subject), True, _span(meta))

    def total(self, meta: Any, _tok: Token) -> A.Total:
        return A.Total(_span(meta))

    def qualified(self, meta: Any, _tok: Token) -> A.QualifiedRef:
        return A.QualifiedRef(_span(meta))

    def disqualified(self, meta: Any, _tok: Token) -> A.DisqualifiedRef:
        return A.DisqualifiedRef(_span(meta))

    def string(self, meta: Any, tok: Token) -> A.Literal:
        return A.Literal(unquote(str(tok)), _tok_span(tok))

    def number(self, meta: Any, tok: Token) -> A.Literal:
        return A.Literal(float(tok), _tok_span(tok))

    def boolean(self, meta: Any, tok: Token) -> A.Literal:
        return A.Literal(str(tok) == "true", _tok_span(tok))

    def list(self, meta: Any, *values: A.Literal | None) -> tuple[A.Literal, ...]:
        return tuple(v for v in values if v is not None)

    def event(self, meta: Any, *children: Any) -> A.EventTest:
        *words, target, at_least, within = children
        name = target[1] if target is not None and target[0] == "name" else None
        any_name = target is not None and target[0] == "any"
        return A.EventTest(
            tuple(str(w) for w in words),
            name,
            any_name,
            at_least,
            None if within is None else within.duration,
            _span(meta),
        )

    def any_name(self, meta: Any, _tok: Token) -> tuple[str, None]:
        return ("any", None)

    def quoted_name(self, meta: Any, tok: Token) -> tuple[str, str]:
        return ("name", unquote(str(tok)))

    def at_least(self, meta: Any, value: Token) -> float:
        return float(value)

    def velocity(
        self, meta: Any, subject: Any, duration: A.Duration, op: Token, value: Token
    ) -> A.Velocity:
        lit = A.Literal(float(value), _tok_span(value))
        return A.Velocity(_subject(subject), duration, str(op), lit, _span(meta))

    def inactive(self, meta: Any, duration: A.Duration) -> A.Inactive:
        return A.Inactive(duration, _span(meta))

    # ---- account aggregates ----
    def aggregate_test(
        self, meta: Any, aggregate: A.AggregateExpr, op: Token, value: Token
    ) -> A.AggregateTest:
        lit = A.Literal(float(value), _tok_span(value))
        return A.AggregateTest(aggregate, str(op), lit, _span(meta))

    def any_qualified(self, meta: Any, where: A.Condition | None) -> A.AnyContact:
        return A.AnyContact(where, True, _span(meta))

    def any_contact(self, meta: Any, where: A.Condition) -> A.AnyContact:
        return A.AnyContact(where, False, _span(meta))

    def all_contacts(self, meta: Any, where: A.Condition) -> A.AllContacts:
        return A.AllContacts(where, _span(meta))

    def agg_by(
        self, meta: Any, fn: Token, top: float | None, where: A.Condition | None, by: Token
    ) -> A.Aggregate:
        return A.Aggregate(str(fn), str(by), top, where, _span(meta))

    def agg_fn(self, meta: Any, tok: Token) -> Token:
        return tok

    def top(self, meta: Any, value: Token) -> float:
        return float(value)

    def agg_count(self, meta: Any, where: A.Condition | None) -> A.CountContacts:
        return A.CountContacts(where, _span(meta))

    def agg_roles(self, meta: Any, where: A.Condition | None) -> A.CountRoles:
        return A.CountRoles(where, _span(meta))

    def where(self, meta: Any, condition: A.Condition) -> A.Condition:
        return condition


def _label(tok: Token) -> str:
    return unquote(str(tok)) if tok.type == "STRING" else str(tok)


def parse(source: Source) -> A.Script:
    """Parse a script's text into its AST, or raise ParseError."""
    return _ToAst().transform(parse_tree(source))
