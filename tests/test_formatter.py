"""The formatter: golden input -> canonical output, and properties over scripts drawn as ASTs."""

from __future__ import annotations

from typing import TypeVar

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import leaddsl
from leaddsl import ast as A
from leaddsl.diagnostics import Source
from leaddsl.formatter import format_script
from leaddsl.grammar import keywords
from leaddsl.syntax import parse

T = TypeVar("T")


def _parse(text: str) -> A.Script:
    return parse(Source(text))


# ---- golden examples ---------------------------------------------------------------

ONE_LINER = (
    "when clicked campaign any: +5; when unsubscribed: -10; "
    "qualify when score >= 100 and visited pricing"
)

CONTRACT = """\
# Statements end at a newline or ';'. Blocks are indented, as in Python.
score engagement:
    when opened email: +1 limit 20          # a rule's total is capped (after decay) at 20
    when clicked campaign any: +5
    when clicked campaign "Q4-launch": +20  # more specific: shadows the 'any' rule for this event
    when visited page "pricing": +15
    when visited page any: +2
    when submitted form any: +25
    when submitted form "demo-request": +40
    when downloaded asset any: +10 once     # counts the first matching event only
    when attended webinar any: +20 within 90 days   # only events of the last 90 days count
    when unsubscribed: -10
    decay half-life 30 days                 # each event's points halve every 30 days of age

score fit:
    when job_title contains "VP" or job_title contains "Director": +15
    when employees >= 200: +10
    when industry in ["software", "fintech"]: +10
    when country is missing: -5

disqualify "student" when job_title contains "student"

classify band:
    hot  when engagement >= 41
    warm when engagement >= 21
    cold otherwise

classify grade:
    A when fit >= 35
    B when fit >= 25
    C when fit >= 10
    D otherwise

classify stage:
    BOFU when qualified
    MOFU when band is "warm" or band is "hot"
    TOFU otherwise

qualify when score >= 100 and visited pricing within 30 days
qualify when submitted form "demo-request"
"""

CONTRACT_FORMATTED = """\
# Statements end at a newline or ';'. Blocks are indented, as in Python.
score engagement:
    when opened email: +1 limit 20  # a rule's total is capped (after decay) at 20
    when clicked campaign any: +5
    when clicked campaign "Q4-launch": +20  # more specific: shadows the 'any' rule for this event
    when visited page "pricing": +15
    when visited page any: +2
    when submitted form any: +25
    when submitted form "demo-request": +40
    when downloaded asset any: +10 once  # counts the first matching event only
    when attended webinar any: +20 within 90 days  # only events of the last 90 days count
    when unsubscribed: -10
    decay half-life 30 days  # each event's points halve every 30 days of age

score fit:
    when job_title contains "VP" or job_title contains "Director": +15
    when employees >= 200: +10
    when industry in ["software", "fintech"]: +10
    when country is missing: -5

disqualify "student" when job_title contains "student"

classify band:
    hot  when engagement >= 41
    warm when engagement >= 21
    cold otherwise

classify grade:
    A when fit >= 35
    B when fit >= 25
    C when fit >= 10
    D otherwise

classify stage:
    BOFU when qualified
    MOFU when band is "warm" or band is "hot"
    TOFU otherwise

qualify when score >= 100 and visited pricing within 30 days
qualify when submitted form "demo-request"
"""  # noqa: E501

ACCOUNT = """\
account:
    score engagement = sum of top 3 contacts by engagement
    score breadth:
        when count of contacts where engagement > 20 >= 3: +20
        when any contact where role = "decision maker" is qualified: +30
    score fit:
        when industry in ["software", "fintech"]: +10
        when employees >= 1000: +15
    weight role "decision maker" 2.0, "champion" 1.5, "user" 0.5
    classify tier:
        strategic when score >= 150 and count of roles >= 3
        target    when score >= 60
        watch     otherwise
    qualify when score >= 150 and any contact where role in ["decision maker", "champion"] is qualified
    rollup to parent: sum
"""  # noqa: E501

ACCOUNT_FORMATTED = """\
account:
    score engagement = sum of top 3 contacts by engagement

    score breadth:
        when count of contacts where engagement > 20 >= 3: +20
        when any contact where role = "decision maker" is qualified: +30

    score fit:
        when industry in ["software", "fintech"]: +10
        when employees >= 1000: +15

    weight role "decision maker" 2, "champion" 1.5, "user" 0.5

    classify tier:
        strategic when score >= 150 and count of roles >= 3
        target    when score >= 60
        watch     otherwise

    qualify when score >= 150 and any contact where role in ["decision maker", "champion"] is qualified

    rollup to parent: sum
"""  # noqa: E501

REFERENCE = """\
# The reference ruleset for benchmarks, in the syntax of the language issue.
# hand.py implements exactly these semantics in plain Python; RULESET.md states them in words.

score engagement:
    when opened email: +1 limit 20
    when clicked campaign any: +5
    when clicked campaign "Q4-launch": +20
    when visited page "pricing": +15
    when visited page any: +2
    when submitted form any: +25
    when downloaded asset any: +10
    when attended webinar any: +20
    when unsubscribed: -10
    decay half-life 30 days

score fit:
    when job_title contains "VP" or job_title contains "Director" or job_title contains "Head": +15
    when employees >= 200: +10
    when industry in ["software", "fintech"]: +10

disqualify "student" when job_title contains "student"

classify band:
    hot  when engagement >= 41
    warm when engagement >= 21
    cold otherwise

qualify when score >= 100 and visited pricing within 30 days

account:
    score engagement = sum of top 3 contacts by engagement
    score breadth:
        when count of contacts where engagement > 20 >= 3: +20
        when any contact where role = "decision maker" is qualified: +30
    rollup to parent: sum
"""  # noqa: E501

REFERENCE_FORMATTED = """\
# The reference ruleset for benchmarks, in the syntax of the language issue.
# hand.py implements exactly these semantics in plain Python; RULESET.md states them in words.

score engagement:
    when opened email: +1 limit 20
    when clicked campaign any: +5
    when clicked campaign "Q4-launch": +20
    when visited page "pricing": +15
    when visited page any: +2
    when submitted form any: +25
    when downloaded asset any: +10
    when attended webinar any: +20
    when unsubscribed: -10
    decay half-life 30 days

score fit:
    when job_title contains "VP" or job_title contains "Director" or job_title contains "Head": +15
    when employees >= 200: +10
    when industry in ["software", "fintech"]: +10

disqualify "student" when job_title contains "student"

classify band:
    hot  when engagement >= 41
    warm when engagement >= 21
    cold otherwise

qualify when score >= 100 and visited pricing within 30 days

account:
    score engagement = sum of top 3 contacts by engagement

    score breadth:
        when count of contacts where engagement > 20 >= 3: +20
        when any contact where role = "decision maker" is qualified: +30

    rollup to parent: sum
"""  # noqa: E501

GOLDEN = [
    pytest.param(
        ONE_LINER,
        "when clicked campaign any: +5\n"
        "when unsubscribed: -10\n"
        "\n"
        "qualify when score >= 100 and visited pricing\n",
        id="one-liner",
    ),
    pytest.param(CONTRACT, CONTRACT_FORMATTED, id="contract"),
    pytest.param(ACCOUNT, ACCOUNT_FORMATTED, id="account"),
    pytest.param(REFERENCE, REFERENCE_FORMATTED, id="reference"),
    pytest.param("", "", id="empty"),
    pytest.param("\n# only a comment\n\n", "# only a comment\n", id="only-comments"),
    pytest.param("when opened email: 1", "when opened email: +1\n", id="no-final-newline"),
    pytest.param("\n\nwhen opened email: +1\n\n\n", "when opened email: +1\n", id="blank-lines"),
    pytest.param(
        "when opened email: 5.0; when x: -10.50; when y: +.5; when z: 007; when w: -0",
        "when opened email: +5\nwhen x: -10.5\nwhen y: +0.5\nwhen z: +7\nwhen w: +0\n",
        id="points-signed",
    ),
    pytest.param(
        "qualify when x >= 1.50 and y < -2.0 and z in [1.0, 2.25, +3]",
        "qualify when x >= 1.5 and y < -2 and z in [1, 2.25, 3]\n",
        id="numbers",
    ),
    pytest.param(
        "score s:\n  when a: +1 additive within 2 days once limit 3\n"
        "  when b: +1 within 1 week once per name\n",
        "score s:\n    when a: +1 limit 3 once within 2 days additive\n"
        "    when b: +1 once per name within 1 week\n",
        id="modifier-order",
    ),
    pytest.param(
        'qualify when x is 5 and y is not "a" exactly and z = true and w != false',
        'qualify when x is 5 and y is not "a" exactly and z = true and w != false\n',
        id="is-style-kept",
    ),
    pytest.param(
        r'disqualify "say \"hi\"\\ \n\t" when job contains "a\"b"',
        'disqualify "say \\"hi\\"\\\\ \\n\\t" when job contains "a\\"b"\n',
        id="string-escapes",
    ),
    pytest.param(
        'qualify when a contains "# not a comment"  # a comment\n',
        'qualify when a contains "# not a comment"  # a comment\n',
        id="hash-in-string",
    ),
    pytest.param(
        "qualify when ((a = 1 or b = 2)) and (not (c = 3)) and not (d = 4 and e = 5)",
        "qualify when (a = 1 or b = 2) and not c = 3 and not (d = 4 and e = 5)\n",
        id="parens-only-where-needed",
    ),
    pytest.param(
        "qualify when (a = 1 and b = 2) or (c = 3 and (d = 4 or e = 5))",
        "qualify when a = 1 and b = 2 or c = 3 and (d = 4 or e = 5)\n",
        id="and-binds-tighter",
    ),
    pytest.param(
        "qualify when not not (visited pricing) or not (opened email at least 1 time)",
        "qualify when not not visited pricing or not opened email at least 1 time\n",
        id="not-chain",
    ),
    pytest.param(
        'when visited page "pricing" at least 3 times within 7 days: +10\n'
        "when engagement gained within 7 days >= 20 and inactive for 2 weeks: -5\n"
        "when score gained within 1 day > 0: +1\n",
        'when visited page "pricing" at least 3 times within 7 days: +10\n'
        "when engagement gained within 7 days >= 20 and inactive for 2 weeks: -5\n"
        "when score gained within 1 day > 0: +1\n",
        id="events-velocity-inactivity",
    ),
    pytest.param(
        'qualify when a starts with "x" or a ends with "y" exactly or a is present '
        'or b not in ["p", 2, true] exactly or c is missing',
        'qualify when a starts with "x" or a ends with "y" exactly or a is present '
        'or b not in ["p", 2, true] exactly or c is missing\n',
        id="text-tests",
    ),
    pytest.param(
        "classify band:\n"
        "  hot when e >= 41; warm when e >= 21\n"
        '  "very cold" when e < 0\n'
        "  cold otherwise\n",
        "classify band:\n"
        "    hot         when e >= 41\n"
        "    warm        when e >= 21\n"
        '    "very cold" when e < 0\n'
        "    cold        otherwise\n",
        id="ladder-aligned",
    ),
    pytest.param(
        'classify q:\n    "any" when a = 1\n    "x" otherwise\n',
        'classify q:\n    "any" when a = 1\n    x     otherwise\n',
        id="ladder-keyword-label-quoted",
    ),
    pytest.param(
        "objects: podcast,demo\nattributes:\n    employees: number; title: text\n"
        'classify priority = grade+rank of band+"!"\n'
        "additive\nexpire after 90 days\ndecay half-life 2 weeks\nwhen a: +1\n",
        "objects: podcast, demo\n"
        "\n"
        "attributes:\n    employees: number\n    title: text\n"
        "\n"
        'classify priority = grade + rank of band + "!"\n'
        "\n"
        "additive\nexpire after 90 days\ndecay half-life 2 weeks\nwhen a: +1\n",
        id="declarations-and-options",
    ),
    pytest.param(
        "qualify when a = 1\ndisqualify when b = 2\nqualify when c = 3\nqualify when d = 4\n",
        "qualify when a = 1\n\ndisqualify when b = 2\n\nqualify when c = 3\nqualify when d = 4\n",
        id="groups-of-kinds",
    ),
    pytest.param(
        "account:\n"
        "    qualify when all contacts where (visited pricing) and any contact is qualified\n"
        '    qualify when any contact where (role = "a" or role = "b")\n'
        "    qualify when any contact where not (opened email) is qualified\n"
        "    qualify when count of contacts where not x = 1 >= 2\n"
        "    qualify when avg of contacts where (engagement > 1 and fit > 2) by fit < 3\n"
        "    score m = max of contacts by fit\n"
        "    score n = count of contacts\n"
        "    score r = count of roles\n",
        "account:\n"
        "    qualify when all contacts where (visited pricing) and any contact is qualified\n"
        '    qualify when any contact where (role = "a" or role = "b")\n'
        "    qualify when any contact where not (opened email) is qualified\n"
        "    qualify when count of contacts where not x = 1 >= 2\n"
        "    qualify when avg of contacts where (engagement > 1 and fit > 2) by fit < 3\n"
        "\n"
        "    score m = max of contacts by fit\n"
        "    score n = count of contacts\n"
        "    score r = count of roles\n",
        id="account-where-parenthesized",
    ),
]


@pytest.mark.parametrize(("source", "expected"), GOLDEN)
def test_golden(source: str, expected: str) -> None:
    assert leaddsl.format(source) == expected
    assert leaddsl.format(expected) == expected
    assert _sorted_modifiers(_parse(expected)) == _sorted_modifiers(_parse(source))


_MODIFIER_RANK = {A.Limit: 0, A.Once: 1, A.OncePerName: 1, A.Within: 2, A.Additive: 3}


def _sorted_modifiers(script: A.Script) -> A.Script:
    """The script with every rule's modifiers in canonical order: the one change formatting
    makes to a tree (once and once per name share a rank: their relative order is kept)."""

    def rule(item: A.ModelItem) -> A.ModelItem:
        if not isinstance(item, A.Rule):
            return item
        mods = tuple(sorted(item.modifiers, key=lambda m: _MODIFIER_RANK[type(m)]))
        return attrs.evolve(item, modifiers=mods)

    def fix(stmt: A.Statement) -> A.Statement:
        match stmt:
            case A.Rule():
                return rule(stmt)
            case A.ScoreBlock():
                return attrs.evolve(stmt, items=tuple(rule(i) for i in stmt.items))
            case A.AccountBlock():
                return attrs.evolve(stmt, items=tuple(fix(i) for i in stmt.items))
        return stmt

    return A.Script(tuple(fix(stmt) for stmt in script.statements))


def test_where_clause_gets_parentheses_from_the_ast() -> None:
    # Built directly: a compound or event test under `where` must come out parenthesized.
    event = A.EventTest(("visited", "pricing"))
    both = A.And((A.Compare(A.Name("a"), "=", A.Literal(1.0)), event))
    script = A.Script(
        (
            A.Qualify(A.AllContacts(event)),
            A.Qualify(A.AnyContact(A.Not(event), qualified=True)),
            A.Qualify(A.AggregateTest(A.CountContacts(both), ">=", A.Literal(2.0))),
        )
    )
    text = format_script(script)
    assert text == (
        "qualify when all contacts where (visited pricing)\n"
        "qualify when any contact where not (visited pricing) is qualified\n"
        "qualify when count of contacts where (a = 1 and visited pricing) >= 2\n"
    )
    assert _parse(text) == script


def test_bad_syntax_raises_parse_error() -> None:
    with pytest.raises(leaddsl.ParseError) as info:
        leaddsl.format("when opened email +1", filename="rules.lead")
    assert str(info.value).startswith("rules.lead:1:")


def test_unwritable_ast_raises_value_error() -> None:
    with pytest.raises(ValueError, match="empty score block"):
        format_script(A.Script((A.ScoreBlock("s", ()),)))
    with pytest.raises(ValueError, match="cannot be written as a number"):
        format_script(A.Script((A.Rule(A.EventTest(("a",)), float("nan")),)))


# ---- properties over scripts drawn as ASTs ------------------------------------------

KEYWORDS = keywords()
UNITS = ["day", "days", "hour", "hours", "week", "weeks"]
OPS = ["=", "!=", "<", "<=", ">", ">="]

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,7}", fullmatch=True).filter(
    lambda n: n not in KEYWORDS
)
texts = st.text(max_size=8)
# -0.0 == 0.0, so the formatter may write it as 0; leave it out so repr() comparisons stay exact.
numbers = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda x: not (x == 0 and str(x).startswith("-"))
)
small = st.integers(0, 1000).map(float) | st.sampled_from([0.5, 2.5, 1e-05, 1e22, 123.456])
durations = st.builds(A.Duration, small, st.sampled_from(UNITS))
literals = st.builds(A.Literal, texts | numbers | st.booleans())
number_literals = st.builds(A.Literal, numbers)
subjects = st.builds(A.Name, names) | st.just(A.Total())


def _compares() -> st.SearchStrategy[A.Compare]:
    op_style = st.builds(
        A.Compare, subjects, st.sampled_from(OPS), literals, st.booleans(), st.just("op")
    )
    is_style = st.builds(
        A.Compare, subjects, st.sampled_from(["=", "!="]), literals, st.booleans(), st.just("is")
    )
    return op_style | is_style


events = st.builds(
    A.EventTest,
    st.lists(names, min_size=1, max_size=3).map(tuple),
    st.none() | texts,
    st.booleans(),
    st.none() | small,
    st.none() | durations,
).map(lambda e: e if e.name is None else A.EventTest(e.words, e.name, False, e.at_least, e.within))

leaves: st.SearchStrategy[A.Condition] = st.one_of(
    _compares(),
    st.builds(
        A.InList, subjects, st.lists(literals, max_size=3).map(tuple), st.booleans(), st.booleans()
    ),
    st.builds(
        A.TextTest,
        subjects,
        st.sampled_from(["contains", "starts", "ends"]),
        st.builds(A.Literal, texts),
        st.booleans(),
    ),
    st.builds(A.Presence, subjects, st.booleans()),
    events,
    st.builds(A.Velocity, subjects, durations, st.sampled_from(OPS), number_literals),
    st.builds(A.Inactive, durations),
    st.just(A.QualifiedRef()),
    st.just(A.DisqualifiedRef()),
)


def _flat(cls: type[A.And] | type[A.Or], items: tuple[A.Condition, ...]) -> A.Condition:
    # The parser flattens `(a and b) and c` into one And: draw trees in that normal form.
    out: list[A.Condition] = []
    for item in items:
        out.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(out))


def _aggregates(conds: st.SearchStrategy[A.Condition]) -> st.SearchStrategy[A.AggregateExpr]:
    wheres = st.none() | conds
    return st.one_of(
        st.builds(
            A.Aggregate,
            st.sampled_from(["sum", "avg", "max", "min"]),
            names,
            st.none() | st.integers(0, 20).map(float),
            wheres,
        ),  # the parser gives floats
        st.builds(A.CountContacts, wheres),
        st.builds(A.CountRoles, wheres),
    )


def _extend(children: st.SearchStrategy[A.Condition]) -> st.SearchStrategy[A.Condition]:
    pairs = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.one_of(
        pairs.map(lambda items: _flat(A.And, items)),
        pairs.map(lambda items: _flat(A.Or, items)),
        st.builds(A.Not, children),
        st.builds(A.AggregateTest, _aggregates(children), st.sampled_from(OPS), number_literals),
        st.builds(A.AnyContact, children, st.booleans()),
        st.builds(A.AnyContact, st.none(), st.just(True)),
        st.builds(A.AllContacts, children),
    )


conditions = st.recursive(leaves, _extend, max_leaves=8)


@st.composite
def modifiers(draw: st.DrawFn) -> tuple[A.Modifier, ...]:
    """At most one of each, in the formatter's canonical order (it sorts them)."""
    mods: list[A.Modifier] = []
    if draw(st.booleans()):
        mods.append(A.Limit(draw(small)))
    once = draw(st.sampled_from([None, A.Once(), A.OncePerName()]))
    if once is not None:
        mods.append(once)
    if draw(st.booleans()):
        mods.append(A.Within(draw(durations)))
    if draw(st.booleans()):
        mods.append(A.Additive())
    return tuple(mods)


def tuples(
    elements: st.SearchStrategy[T], min_size: int = 1, max_size: int = 3
) -> st.SearchStrategy[tuple[T, ...]]:
    return st.lists(elements, min_size=min_size, max_size=max_size).map(tuple)


rules = st.builds(A.Rule, conditions, numbers, modifiers())
options = st.one_of(
    st.builds(A.Decay, durations), st.builds(A.Expire, durations), st.just(A.ModelAdditive())
)
model_items = rules | options
score_blocks = st.builds(A.ScoreBlock, names, tuples(model_items))
rungs = st.builds(A.Rung, texts | names, st.none() | conditions)
classify_blocks = st.builds(A.Classify, names, tuples(rungs, max_size=4))
parts = st.one_of(
    st.builds(A.LabelPart, names), st.builds(A.RankPart, names), st.builds(A.TextPart, texts)
)
combines = st.builds(A.Combine, names, tuples(parts))
qualifies = st.builds(A.Qualify, conditions)
disqualifies = st.builds(A.Disqualify, st.none() | texts, conditions)
attributes = st.builds(A.Attributes, tuples(st.builds(A.AttributeDecl, names, names)))
objects = st.builds(A.Objects, tuples(names))
weights = st.builds(A.Weight, tuples(st.tuples(texts, numbers)))
rollups = st.builds(A.Rollup, names)
aggregate_scores = st.builds(A.AggregateScore, names, _aggregates(conditions))
account_items = st.one_of(
    rules,
    options,
    qualifies,
    disqualifies,
    combines,
    weights,
    rollups,
    aggregate_scores,
    score_blocks,
    classify_blocks,
)
account_blocks = st.builds(A.AccountBlock, tuples(account_items, max_size=5))
statements = st.one_of(
    rules,
    options,
    qualifies,
    disqualifies,
    combines,
    objects,
    score_blocks,
    classify_blocks,
    attributes,
    account_blocks,
)
scripts = st.builds(A.Script, tuples(statements, min_size=0, max_size=5))

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(scripts)
def test_format_reparses_to_an_equal_ast_and_is_idempotent(script: A.Script) -> None:
    text = format_script(script)
    again = _parse(text)
    assert again == script
    # Also compare reprs (spans are out of repr too): == alone takes `true` for 1.
    assert repr(again) == repr(script)
    # format(format(x)) == format(x): `again` is exactly what format() parses from `text`.
    assert format_script(again) == text
    assert text == "" or (text.endswith("\n") and not text.endswith("\n\n"))
    assert "\t" not in text  # tabs inside strings are written \t


COMMENTED = """\
# head

# second para
score s:  # hdr
    # first
    when x in [1,  # mid
       2]: +1  # end
    # when y: +2   (commented out)

# before q, blank above
qualify when a = 1; qualify when b = 2  # on b
    # dangling, indented
account:
  score t:
      when a: +1
        # deeper
      when b: +1
  # about rollup
  rollup to parent: sum
      # after rollup
# final
"""

COMMENTED_FORMATTED = """\
# head

# second para
score s:  # hdr
    # first
    # mid
    when x in [1, 2]: +1  # end
    # when y: +2   (commented out)

# before q, blank above
qualify when a = 1
qualify when b = 2  # on b

# dangling, indented
account:
    score t:
        when a: +1
        # deeper
        when b: +1

    # about rollup
    rollup to parent: sum
    # after rollup
# final
"""


def test_comments_are_kept_next_to_their_statements() -> None:
    assert leaddsl.format(COMMENTED) == COMMENTED_FORMATTED
    assert leaddsl.format(COMMENTED_FORMATTED) == COMMENTED_FORMATTED


def test_format_script_writes_no_comments() -> None:
    assert format_script(_parse(COMMENTED)) == leaddsl.format(
        "\n".join(line.split("#")[0] for line in COMMENTED.splitlines())
    )


def _comment_texts(text: str) -> list[str]:
    # split("\n"), not splitlines(): strings and comments may hold \x85, \u2028, ...
    return [line[line.index("#%c") :] for line in text.split("\n") if "#%c" in line]


@st.composite
def commented(draw: st.DrawFn) -> tuple[A.Script, str, list[str]]:
    """A script, its canonical text with comments put in at random, and those comments."""
    script = draw(scripts)
    lines = format_script(script).split("\n")[:-1]
    out: list[str] = []
    tags: list[str] = []

    def comment() -> str:
        body = draw(st.text(st.characters(exclude_characters="\n"), max_size=6)).rstrip()
        tags.append(f"#%c{len(tags)}{body}")
        return tags[-1]

    for line in [*lines, None]:
        for _ in range(draw(st.integers(0, 2))):
            if draw(st.booleans()):
                out.append("")
            out.append(" " * draw(st.integers(0, 9)) + comment())
        if line is not None:
            out.append(line + ("  " + comment() if line and draw(st.booleans()) else ""))
    return script, "\n".join(out) + "\n", tags


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(commented())
def test_comments_survive_in_order_and_formatting_them_is_idempotent(
    case: tuple[A.Script, str, list[str]],
) -> None:
    script, text, tags = case
    out = leaddsl.format(text)
    assert _parse(out) == script
    assert _comment_texts(out) == tags
    assert leaddsl.format(out) == out


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "when opened email: 1",
                "when clicked campaign any: +5 within 3 days limit 2",
                "qualify when score >= 100 and visited pricing",
                "disqualify when x is missing",
                "decay half-life 30 days",
                "classify p = a + rank of b",
                "objects: demo",
            ]
        ),
        min_size=1,
        max_size=6,
    ).map(tuple)
)
def test_one_line_form_formats_like_the_many_line_form(lines: tuple[str, ...]) -> None:
    assert leaddsl.format("; ".join(lines)) == leaddsl.format("\n".join(lines))


def test_shipped_example_script_is_formatted() -> None:
    # The README tells users to run `leaddsl fmt --check examples/rules.lead` in CI.
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "rules.lead"
    text = path.read_text()
    assert leaddsl.format(text, str(path)) == text
