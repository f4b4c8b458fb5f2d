"""``Ruleset.to_sql``: the compiled query over plain tables, rendered for any sqlglot dialect.

In a warehouse the inputs are ordinary tables: ``events(contact, id, at, action, object,
name)`` with ``at`` a timestamp (UTC), and ``contacts(id, <attribute columns>)``. Two CTEs put
them in the shape the compiled query reads: event times as epoch seconds, each (contact, id)
once (the earliest), and each attribute's text, folded text (LOWER), number, boolean and
presence. Those conversions follow the column types the warehouse has; leaddsl.batch feeds the
same query with records typed exactly as the Python evaluator types them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import plan as P
from . import require

if TYPE_CHECKING:
    from ..ruleset import Ruleset

__all__ = ["to_sql", "warehouse_query"]


def warehouse_query(rules: Ruleset, as_of: float | None = None) -> object:
    """The sqlglot tree: input CTEs over ``events`` and ``contacts``, then the compiled query."""
    require("sqlglot", "batch")
    from sqlglot import exp

    from .compiler import (
        ContactSQL,
        attribute_columns,
        coalesce,
        col,
        ident,
        member_conditions,
        prepend,
    )

    plan = rules.plan
    tests = () if plan.account is None else member_conditions(plan.account)
    compiled = ContactSQL(plan, events="leaddsl_events", contacts="leaddsl_contacts",
                          as_of=as_of, extra=tests)
    query = compiled.query()
    ordered = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col("contact"), col("id")],
        order=exp.Order(expressions=[exp.Ordered(this=col("at"))]),
    )
    events = (
        exp.select(col("contact"), col("id"),
                   exp.alias_(exp.cast(exp.TimeToUnix(this=col("at")), "DOUBLE"), "t",
                              quoted=True),
                   col("action"), col("object"), col("name"))
        .from_(ident("events"))
        .qualify(exp.or_(exp.Is(this=col("id"), expression=exp.Null()),
                         exp.EQ(this=ordered, expression=exp.Literal.number(1))))
    )
    outputs: list[exp.Expr] = [col("id")]
    numeric = plan.numeric_attributes
    truths = _boolean_attributes(plan, tests)
    for name in compiled.attributes:
        t, f, n, b, p = attribute_columns(name)
        text = exp.cast(col(name), "VARCHAR")
        blank = exp.EQ(this=exp.Trim(this=text.copy()), expression=exp.Literal.string(""))
        present = exp.and_(exp.Not(this=exp.Is(this=col(name), expression=exp.Null())),
                           exp.Not(this=coalesce(blank, exp.false())))
        shown = exp.If(this=present.copy(), true=text.copy())
        outputs += [
            exp.alias_(shown, t, quoted=True),
            exp.alias_(exp.Lower(this=shown.copy()), f, quoted=True),
            exp.alias_(exp.TryCast(this=col(name), to=exp.DataType.build("DOUBLE"))
                       if name in numeric else exp.cast(exp.Null(), "DOUBLE"), n, quoted=True),
            exp.alias_(exp.TryCast(this=col(name), to=exp.DataType.build("BOOLEAN"))
                       if name in truths else exp.cast(exp.Null(), "BOOLEAN"), b, quoted=True),
            exp.alias_(present, p, quoted=True),
        ]
    contacts = exp.select(*outputs).from_(ident("contacts"))
    return prepend(query, [("leaddsl_events", events), ("leaddsl_contacts", contacts)])


def _boolean_attributes(plan: P.Plan, tests: tuple[P.Cond, ...]) -> set[str]:
    """Attributes the rules compare with true or false: only those are read as booleans."""
    from .compiler import plan_conditions, walk

    found = set()
    for cond in [*plan_conditions(plan), *tests]:
        for node in walk(cond):
            if isinstance(node, (P.Cmp, P.In)) and isinstance(node.subject, P.Attr):
                values = (node.value,) if isinstance(node, P.Cmp) else node.values
                if any(isinstance(v, bool) for v in values):
                    found.add(node.subject.name)
    return found


def to_sql(rules: Ruleset, dialect: str = "duckdb", as_of: object = None,
           pretty: bool = True) -> str:
    from sqlglot.errors import ErrorLevel, UnsupportedError

    from ..errors import LeadDSLError
    from ..records import parse_time

    when = None if as_of is None else parse_time(as_of, source="as_of", field="as_of")
    query = warehouse_query(rules, when)
    try:
        text: str = query.sql(  # type: ignore[attr-defined]
            dialect=dialect, pretty=pretty, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        what = str(exc).splitlines()[0]
        lines = [d.line for d in rules.plan.disqualify]
        if "Array" in what:  # the only array: the reasons that hold
            what += " (the list of disqualify reasons" + (
                ", from the disqualify lines on line " + ", ".join(map(str, lines))
                if lines else "") + ")"
        raise LeadDSLError(f"cannot express this script in {dialect} SQL: {what}") from None
    except ValueError as exc:  # an unknown dialect
        raise LeadDSLError(str(exc).splitlines()[0]) from None
    head = ["-- leaddsl: the contact rules of this script as one query.",
            "-- Reads events(contact, id, at, action, object, name) and contacts(id, ...).",
            "-- One row per contact: id, score:<model>, total, label:<ladder>, qualified,",
            "-- disqualified, reasons, last_t."]
    if rules.plan.account is not None:
        head.append("-- The account block is evaluated by leaddsl over these rows "
                    "(where:<k> are its tests on contacts).")
    return "\n".join(head) + "\n" + text
