"""Scale-out on Spark: the rule script's SQL rendered for Spark, over DataFrames.

The events DataFrame (the large part) stays in Spark: it is validated, repeated ids are
dropped, and the query that leaddsl.sql.compiler builds from the script runs as Spark SQL,
partitioned by contact. Contacts and accounts (small next to the events) are collected to the
driver, validated and linked as the Python path does it, and handed back to Spark with the
memberships and the hierarchy (closed in Python); the account block runs as Spark SQL over
the contacts' results, which never leave Spark.

    contacts_df, accounts_df = leaddsl.spark.score(rules, events_df, contacts_df, accounts_df)

Differences from the other backends, by design of a cluster: when one contact's event id
repeats with different contents, the earliest of them counts (Spark keeps no input order); bad
events are named by their id (or contents), not by file and line.
"""

from __future__ import annotations

from typing import Any

from .batch import _normalized
from .columns import Sourced as _Sourced
from .engine import Engine
from .errors import LeadDSLError, RecordError
from .records import MAX_TIME, MIN_TIME, Rejected, check_event, parse_time, to_datetime
from .ruleset import Ruleset
from .sql import require
from .sql.accounts import AccountSQL, account_tables
from .sql.compiler import ContactSQL, attribute_columns, member_conditions

__all__ = ["score"]


def _rows(df: Any, what: str) -> _Sourced:
    """A small DataFrame's rows as records (missing values left out), named by position."""
    out = _Sourced()
    if df is None:
        return out
    for i, row in enumerate(df.collect(), 1):
        rec = {k: v for k, v in row.asDict(recursive=True).items() if v is not None}
        out.append((f"{what} row {i}", rec))
    return out


def _time_sql(kind: str) -> str:
    if kind in ("timestamp", "timestamp_ntz", "date"):
        return "CAST(CAST(`at` AS TIMESTAMP) AS DOUBLE)"
    if kind in ("double", "float", "bigint", "int", "long", "integer", "smallint"):
        return "CAST(`at` AS DOUBLE)"
    return ("coalesce(CAST(try_cast(`at` AS TIMESTAMP) AS DOUBLE), "
            "try_cast(`at` AS DOUBLE))")


_BAD = (f"(action IS NULL OR action = '' OR at_text IS NULL OR t IS NULL OR t < {MIN_TIME!r} "
        f"OR t > {MAX_TIME!r} OR contact IS NULL OR k.id IS NULL)")


def score(
    rules: Ruleset,
    events_df: Any,
    contacts_df: Any,
    accounts_df: Any = None,
    as_of: object = None,
    *,
    errors: str = "raise",
) -> tuple[Any, Any]:
    """Score every contact and account; returns ``(contacts_df, accounts_df)``.

    Args:
        rules: a compiled Ruleset.
        events_df: a DataFrame with ``contact``, ``action``, ``at`` (an ISO 8601 text, a
            timestamp or epoch seconds) and optionally ``id``, ``object``, ``name``.
        contacts_df, accounts_df: DataFrames of contact and account records (one column per
            attribute; ``accounts_df`` may be None).
        as_of: the evaluation time; default the latest event's.
        errors: "raise" stops at the first bad record with a RecordError; "collect" leaves
            bad records out (:func:`score_with_report` also returns them, with reasons).

    The contact rows have ``id``, ``total``, ``scores`` (a struct: one field per model),
    ``labels`` (a struct), ``qualified``, ``disqualified``, ``reasons``; the account rows the
    same and ``members``, ``eligible``, ``parent``, ``subsidiaries``.

    When a rollup meets disqualify lines, accounts are scored height by height and those
    frames are cached (computed once); unpersist them with ``spark.catalog.clearCache()``
    once the results are written.
    """
    contacts, accounts, _ = score_with_report(rules, events_df, contacts_df, accounts_df, as_of,
                                              errors=errors)
    return contacts, accounts


def score_with_report(
    rules: Ruleset,
    events_df: Any,
    contacts_df: Any,
    accounts_df: Any = None,
    as_of: object = None,
    *,
    errors: str = "raise",
) -> tuple[Any, Any, tuple[Rejected, ...]]:
    """:func:`score`, and every record set aside (with ``errors="collect"``)."""
    require("pyspark", "spark")
    require("sqlglot", "spark")
    if errors not in ("raise", "collect"):
        raise LeadDSLError(f"errors must be 'raise' or 'collect', not {errors!r}")
    if not isinstance(rules, Ruleset):
        raise LeadDSLError(f"score takes a compiled Ruleset, got {type(rules).__name__}")
    spark = events_df.sparkSession
    spark.conf.set("spark.sql.session.timeZone", "UTC")  # times without an offset are UTC
    fixed = None if as_of is None else parse_time(as_of, source="as_of", field="as_of")

    engine = Engine(rules)
    rejected = list(engine.load(accounts=_rows(accounts_df, "accounts"),  # type: ignore[arg-type]
                                errors=errors).rejected)
    rejected += engine.load(contacts=_rows(contacts_df, "contacts"),  # type: ignore[arg-type]
                            errors=errors).rejected
    tests = () if rules.plan.account is None else member_conditions(rules.plan.account)
    attributes = ContactSQL(rules.plan, extra=tests).attributes
    _contacts_view(spark, engine, attributes)

    # Events: typed, validated against the record format and the contacts, deduplicated.
    kinds = {f.name.lower(): f.dataType.simpleString() for f in events_df.schema.fields}
    missing = {"contact", "action", "at"} - set(kinds)
    if missing:
        raise LeadDSLError("events need the columns contact, action and at; missing "
                           + ", ".join(sorted(missing)))
    events_df.createOrReplaceTempView("leaddsl_raw")

    def text(c: str) -> str:
        return f"CAST(`{c}` AS STRING)" if c in kinds else "CAST(NULL AS STRING)"

    spark.sql(
        "SELECT " + ", ".join([
            f"{text('id')} AS id", f"{text('contact')} AS contact", f"{text('at')} AS at_text",
            f"{_time_sql(kinds['at'])} AS t", f"{text('action')} AS action",
            f"{text('object')} AS object", f"{text('name')} AS name"])
        + " FROM leaddsl_raw").createOrReplaceTempView("leaddsl_typed")
    flagged = spark.sql(
        f"SELECT e.*, {_BAD} AS bad FROM leaddsl_typed e "
        "LEFT JOIN (SELECT DISTINCT id FROM leaddsl_contacts) k ON k.id = e.contact")
    flagged.createOrReplaceTempView("leaddsl_flagged")
    bad_rows = spark.sql("SELECT id, contact, at_text, action, object, name FROM "
                         "leaddsl_flagged WHERE bad" + (" LIMIT 1" if errors == "raise" else ""))
    for row in bad_rows.collect():
        rec = {k: v for k, v in (("id", row.id), ("contact", row.contact), ("at", row.at_text),
                                 ("action", row.action), ("object", row.object),
                                 ("name", row.name)) if v is not None}
        source = "events" if row.id is None else f"events (id {row.id!r})"
        try:
            ev = check_event(rec, source, require_contact=True)
            err = RecordError(f"unknown contact {ev.contact!r}", source=source,
                              record_id=ev.id, field="contact")
        except RecordError as exc:
            err = exc
        if errors == "raise":
            raise err
        rejected.append(Rejected(source, str(err), rec))
    spark.sql(
        "SELECT contact, t, action, object, name FROM (SELECT *, row_number() OVER "
        "(PARTITION BY contact, id ORDER BY t, action, object, name) AS leaddsl_n "
        "FROM leaddsl_flagged WHERE NOT bad) WHERE id IS NULL OR leaddsl_n = 1"
    ).createOrReplaceTempView("leaddsl_events")
    latest = spark.sql("SELECT max(t) AS v FROM leaddsl_events").collect()[0].v
    when = fixed if fixed is not None else latest

    query = ContactSQL(rules.plan, events="leaddsl_events", contacts="leaddsl_contacts",
                       as_of=0.0 if when is None else when, extra=tests).query()
    scored = spark.sql(query.sql(dialect="spark"))
    return (_contact_frame(spark, scored, rules, when),
            _account_frame(spark, engine, rules, scored, when), tuple(rejected))


def _records_view(spark: Any, name: str, ids: list[str], records: list[Any],
                  attributes: tuple[str, ...], pos: bool = False) -> None:
    """A view of ids (and their position, with ``pos``) and the normalized columns of each
    attribute the rules read."""
    from pyspark.sql.types import (
        BooleanType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    fields = [StructField("id", StringType(), False)]
    if pos:
        fields.append(StructField("pos", LongType(), False))
    for attr in attributes:
        t, f, n, b, p = attribute_columns(attr)
        fields += [StructField(t, StringType()), StructField(f, StringType()),
                   StructField(n, DoubleType()), StructField(b, BooleanType()),
                   StructField(p, BooleanType())]
    rows = []
    for i, (rid, rec) in enumerate(zip(ids, records, strict=True)):
        row: list[Any] = [rid, i] if pos else [rid]
        for attr in attributes:
            row += list(_normalized(rec.get(attr)))
        rows.append(row)
    spark.createDataFrame(rows, StructType(fields)).createOrReplaceTempView(name)


def _contacts_view(spark: Any, engine: Engine, attributes: tuple[str, ...]) -> None:
    _records_view(spark, "leaddsl_contacts", list(engine._attrs), list(engine._attrs.values()),
                  attributes)


def _contact_frame(spark: Any, scored: Any, rules: Ruleset, when: float | None) -> Any:
    return _frame(scored, [m.name for m in rules.plan.models], list(rules.plan.label_names),
                  when, ())


def _frame(scored: Any, models: list[str], labels: list[str], when: float | None,
           extra: tuple[str, ...]) -> Any:
    """Rows of the compiled SQL as result rows: scores and labels as structs."""
    from pyspark.sql import functions as F

    def c(name: str) -> Any:
        return F.col(f"`{name}`")

    stamp = to_datetime(when)
    cols = [
        c("id").alias("id"),
        c("total").cast("double").alias("total"),  # a sum of literals may be a DECIMAL
        F.struct(*[c(f"score:{m}").cast("double").alias(m) for m in models]).alias("scores"),
    ]
    if labels:
        cols.append(F.struct(*[c(f"label:{k}").alias(k) for k in labels]).alias("labels"))
    cols += [c("qualified").alias("qualified"), c("disqualified").alias("disqualified"),
             c("reasons").alias("reasons"),
             F.lit(None if stamp is None else stamp.isoformat()).cast("string").alias("as_of")]
    cols += [c(name).alias(name) for name in extra]
    return scored.select(*cols)


def _account_frame(spark: Any, engine: Engine, rules: Ruleset, scored: Any,
                   when: float | None) -> Any:
    """The account block as Spark SQL over the contacts' results (leaddsl.sql.accounts); the
    memberships and the hierarchy (small) are staged from the driver, the contact rows stay in
    Spark. With a rollup and disqualify lines, one height at a time, leaves first."""
    if rules.plan.account is None:
        return None
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    asql = AccountSQL(rules.plan.account, results="leaddsl_results", members="leaddsl_members",
                      accounts="leaddsl_accounts", hierarchy="leaddsl_hierarchy",
                      as_of=0.0 if when is None else when, dialect="spark")
    members, hierarchy = account_tables(engine)
    ids = engine.account_ids()
    _records_view(spark, "leaddsl_accounts", ids, [engine._account_attrs[a] for a in ids],
                  asql.attributes, pos=True)
    spark.createDataFrame(members, StructType([
        StructField("account", StringType(), False), StructField("contact", StringType(), False),
        StructField("role", StringType()), StructField("pos", LongType(), False),
    ])).createOrReplaceTempView("leaddsl_members")
    spark.createDataFrame(hierarchy, StructType([
        StructField("ancestor", StringType(), False),
        StructField("descendant", StringType(), False),
        StructField("depth", LongType(), False),
    ])).createOrReplaceTempView("leaddsl_hierarchy")
    if not asql.needs_levels:
        scored.createOrReplaceTempView("leaddsl_results")
        rows = spark.sql(asql.query().sql(dialect="spark"))
    else:
        # Each height reads which accounts below it are disqualified: those flags (one per
        # account, small) go through the driver, so that no height's plan holds the ones
        # below it; the contact rows and each height's rows are cached, computed once.
        scored.cache().createOrReplaceTempView("leaddsl_results")
        done: list[tuple[str, bool]] = []
        levels = []
        for level in range(max((h[2] for h in hierarchy), default=0) + 1):
            spark.createDataFrame(done, "id string, disqualified boolean").createOrReplaceTempView(
                "leaddsl_account_done")
            more = spark.sql(asql.query(level, "leaddsl_account_done").sql(dialect="spark"))
            more = more.cache()
            done += [(r.id, r.disqualified) for r in more.select("id", "disqualified").collect()]
            levels.append(more)
        rows = levels[0]
        for more in levels[1:]:
            rows = rows.unionByName(more)
    plan = rules.plan.account.plan
    return _frame(rows, [m.name for m in plan.models], list(plan.label_names), when,
                  ("members", "eligible", "parent", "subsidiaries"))
