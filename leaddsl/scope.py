"""Scope: the names a script defines, and how words in conditions resolve against them.

Shared by the checks (which report what does not resolve) and the compiler (which relies on
everything resolving). Takes a Script (AST) and returns a Scope.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from . import ast as A

__all__ = [
    "Scope",
    "build_scope",
    "BUILTIN_OBJECTS",
    "DEFAULT_MODEL",
    "walk_conditions",
    "iter_rules",
    "member_tests",
    "account_script",
]

# Object kinds known without declaration (the vocabulary of marketing tools, see the brief).
# A script adds its own with `objects: video, podcast`.
BUILTIN_OBJECTS = frozenset(
    {
        "email",
        "campaign",
        "page",
        "landing",
        "form",
        "asset",
        "webinar",
        "chatbot",
        "popup",
        "automation",
        "tag",
        "video",
        "meeting",
        "call",
        "ad",
        "sms",
        "event",
        "document",
        "trial",
    }
)
DEFAULT_MODEL = "default"
ATTRIBUTE_TYPES = ("text", "number", "boolean")


@attrs.frozen
class Scope:
    models: dict[str, A.Span]  # name -> where it is defined
    ladders: dict[str, A.Classify]
    combined: dict[str, A.Combine]
    schema: dict[str, str] | None  # declared attribute types, or None when no attributes block
    objects: frozenset[str]
    object_words: dict[str, A.Span]  # words used as an object kind in unambiguous patterns
    # For an account block's scope: the scope of its member contacts, which where clauses and
    # `by MODEL` use. None for the contacts' own scope.
    members: Scope | None = None

    @property
    def label_names(self) -> set[str]:
        return set(self.ladders) | set(self.combined)

    def labels_of(self, ladder: str) -> tuple[str, ...]:
        if ladder in self.ladders:
            return tuple(r.label for r in self.ladders[ladder].rungs)
        return ()

    def resolve(self, name: str) -> str:
        """What a bare name in a condition refers to: 'model', 'ladder' or 'attribute'."""
        if name in self.models:
            return "model"
        if name in self.ladders or name in self.combined:
            return "ladder"
        return "attribute"

    def event_pattern(self, test: A.EventTest) -> tuple[str, str | None, str | None]:
        """(action, object, name) of an event test; the checks have rejected malformed ones.

        One word is the action. With `any` or a quoted name after it, the second word is an
        object kind. Three words are action, object, name. Two bare words are action and
        object when the second is a known object kind, else action and event name.
        """
        words = test.words
        action = words[0]
        obj: str | None = None
        name: str | None = test.name
        if len(words) >= 3:
            obj, name = words[1], words[2]
        elif len(words) == 2:
            if test.name is not None or test.any_name or words[1] in self.objects:
                obj = words[1]
            else:
                name = words[1]
        return action, obj, name


def iter_rules(script: A.Script) -> Iterator[tuple[str, A.Rule]]:
    """Every contact-level rule with the model it belongs to, in script order."""
    for stmt in script.statements:
        if isinstance(stmt, A.Rule):
            yield DEFAULT_MODEL, stmt
        elif isinstance(stmt, A.ScoreBlock):
            for item in stmt.items:
                if isinstance(item, A.Rule):
                    yield stmt.name, item


def walk_conditions(cond: A.Condition | None, into_where: bool = True) -> Iterator[A.Condition]:
    """A condition and every condition inside it, depth first.

    With ``into_where`` false, the where clauses of account tests are left out: they test a
    contact, so an account's checks look at them against the contacts' scope.
    """
    if cond is None:
        return
    yield cond
    match cond:
        case A.And(items) | A.Or(items):
            for item in items:
                yield from walk_conditions(item, into_where)
        case A.Not(item):
            yield from walk_conditions(item, into_where)
        case A.AggregateTest(aggregate=agg) if into_where:
            yield from walk_conditions(agg.where, into_where)
        case A.AnyContact(where=where) | A.AllContacts(where=where) if into_where:
            yield from walk_conditions(where, into_where)


def member_tests(cond: A.Condition | None) -> Iterator[A.Condition]:
    """The where clauses of the account tests in a condition (each tests one contact)."""
    for node in walk_conditions(cond, into_where=False):
        if isinstance(node, A.AggregateTest) and node.aggregate.where is not None:
            yield node.aggregate.where
        elif isinstance(node, (A.AnyContact, A.AllContacts)) and node.where is not None:
            yield node.where


def account_script(script: A.Script) -> A.Script | None:
    """The account block's statements as a script of their own, or None without a block.

    An account block reads like a script about accounts, so the same checks and the same
    compiler run over it, with the contacts' scope kept for its where clauses.
    """
    blocks = [s for s in script.statements if isinstance(s, A.AccountBlock)]
    if not blocks:
        return None
    return A.Script(tuple(item for block in blocks for item in block.items))


def build_scope(script: A.Script, members: Scope | None = None) -> Scope:
    models: dict[str, A.Span] = {}
    ladders: dict[str, A.Classify] = {}
    combined: dict[str, A.Combine] = {}
    schema: dict[str, str] | None = None
    objects = set(BUILTIN_OBJECTS)
    for stmt in script.statements:
        match stmt:
            case A.Rule() | A.Decay() | A.Expire() | A.ModelAdditive():
                models.setdefault(DEFAULT_MODEL, stmt.span)
            case A.ScoreBlock(name=name):
                models.setdefault(name, stmt.name_span)
            case A.AggregateScore(name=name):
                models.setdefault(name, stmt.span)
            case A.Classify(name=name):
                ladders.setdefault(name, stmt)
            case A.Combine(name=name):
                combined.setdefault(name, stmt)
            case A.Attributes(decls=decls):
                schema = schema or {}
                for d in decls:
                    schema.setdefault(d.name, d.type)
            case A.Objects(names=names):
                objects.update(names)
    if members is not None:
        objects.update(members.objects)
    object_words: dict[str, A.Span] = {}
    for _, rule in iter_rules(script):
        _note_objects(rule.condition, object_words)
    for stmt in script.statements:
        if isinstance(stmt, (A.Qualify, A.Disqualify)):
            _note_objects(stmt.condition, object_words)
        elif isinstance(stmt, A.Classify):
            for rung in stmt.rungs:
                _note_objects(rung.condition, object_words)
    return Scope(models, ladders, combined, schema, frozenset(objects), object_words, members)


def _note_objects(cond: A.Condition | None, out: dict[str, A.Span]) -> None:
    for node in walk_conditions(cond):
        if isinstance(node, A.EventTest) and (
            len(node.words) >= 3 or (len(node.words) == 2 and (node.name or node.any_name))
        ):
            out.setdefault(node.words[1], node.span)
