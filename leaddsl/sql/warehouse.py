"""``Ruleset.to_sql``: the compiled query over plain tables, rendered for any sqlglot dialect.

In a warehouse the inputs are ordinary tables: ``events(contact, id, at, action, object,
name)`` with ``at`` a timestamp (UTC), and ``contacts(id, <attribute columns>)``. Two CTEs put
them in the shape the compiled query reads: event times as epoch seconds, each (contact, id)
once (the earliest), and each attribute's text, folded text (LOWER), number, boolean and
presence. Those conversions follow the column types the warehouse has; leaddsl.batch feeds the
same query with records typed exactly as the Python evaluator types them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import plan as P
from . import require

if TYPE_CHECKING:
    from ..ruleset import Ruleset

__all__ = ["to_sql", "warehouse_query"]


def warehouse_query(rules: Ruleset, as_of: float | None = None, part: str = "contacts",
                    levels: int = 10, dialect: str = "duckdb") -> object:
    """The sqlglot tree: input CTEs over ``events`` and ``contacts``, then the compiled query;
    with ``part="accounts"`` the account query over those rows and the ``accounts``,
    ``members`` and ``hierarchy`` tables."""
    require("sqlglot", "batch")
    from sqlglot import exp

    from .compiler import ContactSQL, col, ident, member_conditions, prepend

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
    contacts = _normalized(plan, tests, compiled.attributes, "contacts")
    inputs = [("leaddsl_events", events), ("leaddsl_contacts", contacts)]
    if part == "contacts":
        return prepend(query, inputs)
    if part != "accounts":
        raise ValueError(f"part must be 'contacts' or 'accounts', not {part!r}")
    if plan.account is None:
        from ..errors import LeadDSLError

        raise LeadDSLError("this script has no account block: there is no account SQL")
    from .accounts import AccountSQL, account_attributes

    # The contact query's CTEs move up beside the account query's; its select becomes one.
    inner = list(query.args["with_"].expressions)
    query.set("with_", None)
    asql = AccountSQL(
        plan.account, results="leaddsl_results", members="leaddsl_members",
        accounts="leaddsl_accounts", hierarchy="hierarchy", as_of=as_of,
        as_of_sql=None if as_of is not None else exp.Subquery(
            this=exp.select(col("v")).from_(ident("as_of_time"))), dialect=dialect)
    # Accounts get an order (pos) and members their place in the account's list: by id.
    accounts = _normalized(plan.account.plan, (), account_attributes(plan.account), "accounts",
                           pos=exp.Window(this=exp.RowNumber(), order=exp.Order(
                               expressions=[exp.Ordered(this=col("id"))])))
    role = exp.Trim(this=exp.cast(col("role"), "VARCHAR"))
    members = exp.select(
        col("account"), col("contact"),
        exp.alias_(exp.If(this=exp.EQ(this=role, expression=exp.Literal.string("")),
                          true=exp.Null(), false=exp.Lower(this=role.copy())),
                   "role", quoted=True),
        exp.alias_(exp.Window(this=exp.RowNumber(), partition_by=[col("account")],
                              order=exp.Order(expressions=[exp.Ordered(this=col("contact"))])),
                   "pos", quoted=True),
    ).from_(ident("members"))
    account_query = asql.unrolled(levels)
    made = [exp.CTE(this=body, alias=exp.TableAlias(this=ident(name)))
            for name, body in [*inputs, ("leaddsl_accounts", accounts),
                               ("leaddsl_members", members)]]
    made += inner
    made.append(exp.CTE(this=query, alias=exp.TableAlias(this=ident("leaddsl_results"))))
    own = list(account_query.args["with_"].expressions)
    account_query.set("with_", exp.With(expressions=[*made, *own]))
    return account_query


def _normalized(plan: P.Plan, tests: tuple[P.Cond, ...], attributes: tuple[str, ...],
                table: str, pos: Any = None) -> Any:
    """Each attribute's text, folded text (LOWER), number, boolean and presence, as the
    compiled query reads them, from a table with one column per attribute."""
    from sqlglot import exp

    from .compiler import attribute_columns, coalesce, col, ident

    outputs: list[exp.Expr] = [col("id")]
    if pos is not None:
        outputs.append(exp.alias_(pos, "pos", quoted=True))
    numeric = plan.numeric_attributes
    truths = _boolean_attributes(plan, tests)
    for name in attributes:
        t, f, n, b, p = attribute_columns(name)
        text = exp.cast(col(name), "VARCHAR")
        blank = exp.EQ(this=exp.Trim(this=text.copy()), expression=exp.Literal.string(""))
        present = exp.and_(exp.Not(this=exp.Is(this=col(name), expression=exp.Null())),
                           exp.Not(this=coalesce(blank, exp.false())))
        shown = exp.If(this=present.copy(), true=text.copy(), false=exp.Null())
        outputs += [
            exp.alias_(shown, t, quoted=True),
            exp.alias_(exp.Lower(this=shown.copy()), f, quoted=True),
            exp.alias_(_try_cast(col(name), "DOUBLE")
                       if name in numeric else exp.cast(exp.Null(), "DOUBLE"), n, quoted=True),
            exp.alias_(_try_cast(col(name), "BOOLEAN")
                       if name in truths else exp.cast(exp.Null(), "BOOLEAN"), b, quoted=True),
            exp.alias_(present, p, quoted=True),
        ]
    return exp.select(*outputs).from_(ident(table))


def _try_cast(value: Any, kind: str) -> Any:
    """TRY_CAST (``safe``: sqlglot renders an unsafe one as CAST for Spark, which then fails
    on a value it cannot read)."""
    from sqlglot import exp

    return exp.TryCast(this=value, to=exp.DataType.build(kind), safe=True)


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
           pretty: bool = True, part: str = "contacts", levels: int = 10) -> str:
    from sqlglot.errors import ErrorLevel, UnsupportedError

    from ..errors import LeadDSLError
    from ..records import parse_time

    when = None if as_of is None else parse_time(as_of, source="as_of", field="as_of")
    if part not in ("contacts", "accounts"):
        raise LeadDSLError(f"part must be 'contacts' or 'accounts', not {part!r}")
    query = warehouse_query(rules, when, part, levels, dialect)
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
    if part == "accounts":
        assert rules.plan.account is not None
        head = ["-- leaddsl: the account block of this script as one query.",
                "-- Reads events(contact, id, at, action, object, name), contacts(id, ...),",
                "-- accounts(id, ...), members(account, contact, role) and",
                "-- hierarchy(ancestor, descendant, depth): the parent links closed, with a",
                "-- depth-0 row per account (leaddsl.sql.accounts.account_tables makes both).",
                "-- One row per account: id, score:<model>, total, label:<ladder>, qualified,",
                "-- disqualified, reasons, members, eligible, parent, subsidiaries."]
        if _needs_levels(rules):
            head.append(f"-- Scores hierarchies up to {levels} levels deep (a subsidiary's "
                        "disqualification decides")
            head.append("-- what its parent counts); accounts higher up are not in the result.")
        return "\n".join(head) + "\n" + text
    head = ["-- leaddsl: the contact rules of this script as one query.",
            "-- Reads events(contact, id, at, action, object, name) and contacts(id, ...).",
            "-- One row per contact: id, score:<model>, total, label:<ladder>, qualified,",
            "-- disqualified, reasons, last_t."]
    if rules.plan.account is not None:
        head.append("-- where:<k> are the account block's tests on contacts; "
                    "to_sql(part='accounts') gives the account query.")
    return "\n".join(head) + "\n" + text


def _needs_levels(rules: Ruleset) -> bool:
    account = rules.plan.account
    return account is not None and account.rollup != "none" and bool(account.plan.disqualify)
