"""Batch re-scoring on DuckDB: the whole history, the rule script compiled to SQL.

Events (the large part) never pass through Python: DuckDB reads them from NDJSON or Parquet
files (globs allowed), an existing relation or an Arrow table, validates them, drops repeated
event ids, and runs the query that leaddsl.sql.compiler builds from the script's plan.
Contacts and accounts (small next to the events) are read and validated in Python exactly as
the Python path does it (the same errors, the same account graph), then handed to DuckDB.
The account block runs as SQL too (leaddsl.sql.accounts), over the contacts' results, the
memberships and the hierarchy of the engine's account graph, closed in Python.

Example:
    >>> import leaddsl, leaddsl.batch
    >>> rules = leaddsl.compile("when opened email: +1")
    >>> result = leaddsl.batch.score(
    ...     rules, events=[{"id": "e1", "contact": "c1", "action": "opened", "object": "email",
    ...                     "at": "2026-01-01T00:00:00Z"}], contacts=[{"id": "c1"}])
    >>> result.contacts[0]["total"]
    1.0
"""

from __future__ import annotations

import glob
import os
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import orjson

from . import plan as P
from .columns import Sourced as _Sourced
from .engine import Engine, Progress, paused_gc
from .errors import LeadDSLError, RecordError
from .records import MAX_TIME, MIN_TIME, Rejected, check_event, parse_time, read_ndjson, to_datetime
from .ruleset import Ruleset, _as_text, _missing
from .sql import require
from .sql.accounts import AccountSQL, account_row, account_tables
from .sql.compiler import ContactSQL, attribute_columns, col, ident, member_conditions

__all__ = ["score", "BatchResult"]

Source = str | Path | Sequence[str | Path] | Iterable[Mapping[str, Any]] | Any


@attrs.frozen
class BatchResult:
    """What a batch run computed: a dict per contact and per account, and what it set aside.

    Rows have the keys of ``ContactResult.to_dict()``: ``id``, ``total``, ``scores`` (per
    model), ``labels``, ``qualified``, ``disqualified``, ``reasons``, ``as_of``.
    """

    contacts: tuple[dict[str, Any], ...]
    accounts: tuple[dict[str, Any], ...]
    rejected: tuple[Rejected, ...]
    as_of: datetime | None
    events: int  # events scored (repeated ids counted once)
    duplicates: int  # events whose id their contact already had
    orphans: tuple[str, ...] = ()

    def write(self, path: str | Path) -> list[Path]:
        """Write the contact rows to ``path`` (``.parquet`` or ``.ndjson``, by suffix) and, when
        the script has an account block, the account rows beside it (``NAME.accounts.SUFFIX``).

        Returns the paths written.
        """
        path = Path(path)
        if path.suffix not in (".parquet", ".ndjson"):
            raise LeadDSLError(f"cannot write {str(path)!r}: the name must end in .parquet or "
                               ".ndjson")
        out = [path]
        _write(path, self.contacts)
        if self.accounts:
            extra = path.with_name(f"{path.stem}.accounts{path.suffix}")
            _write(extra, self.accounts)
            out.append(extra)
        return out


def _flat(row: Mapping[str, Any]) -> dict[str, Any]:
    """A result row as flat columns: score.MODEL and label.LADDER beside the rest."""
    flat = {k: v for k, v in row.items() if k not in ("scores", "labels")}
    flat.update({f"score.{m}": v for m, v in row["scores"].items()})
    flat.update({f"label.{k}": v for k, v in row["labels"].items()})
    return flat


def _write(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    if path.suffix == ".ndjson":
        with open(path, "wb") as f:
            for row in rows:
                f.write(orjson.dumps(row) + b"\n")
        return
    duckdb = require("duckdb", "batch")
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "rows.ndjson"
        with open(staged, "wb") as f:
            for row in rows:
                f.write(orjson.dumps(_flat(row)) + b"\n")
        con = duckdb.connect()
        try:
            if rows:
                con.read_json(str(staged), format="newline_delimited").write_parquet(str(path))
            else:
                con.sql("SELECT NULL::VARCHAR AS id WHERE false").write_parquet(str(path))
        finally:
            con.close()


# ---- the SQL a script compiles to ----------------------------------------------------------

# The SQL text of each ruleset, by what it was built for. Building it (sqlglot trees, copied
# and rendered) costs tens of milliseconds a run; it depends only on the script (the as-of
# time and the data are read from tables), so a script re-scored is built once. Weak keys:
# the cache never keeps a script alive. One build at a time: the account query's builder is
# kept and is not safe to share while it builds.
_BUILT: weakref.WeakKeyDictionary[Ruleset, dict[tuple[object, ...], Any]] = (
    weakref.WeakKeyDictionary())
_BUILDING = threading.RLock()


def _built(rules: Ruleset, key: tuple[object, ...], build: Callable[[], Any]) -> Any:
    """What ``build`` makes for ``rules`` and ``key``, made once."""
    with _BUILDING:
        per = _BUILT.setdefault(rules, {})
        if key not in per:
            per[key] = build()
        return per[key]


# ---- inputs -------------------------------------------------------------------------------


def _paths(source: str | Path | Sequence[str | Path]) -> list[str]:
    """Files named by a path, a glob or a list of them; a name that matches nothing is an error."""
    items = [source] if isinstance(source, (str, Path)) else list(source)
    out: list[str] = []
    for item in items:
        text = str(item)
        found = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        if not found or not all(os.path.isfile(f) for f in found):
            raise LeadDSLError(f"no such file: {text!r}")
        out += found
    return out


def _is_paths(source: object) -> bool:
    return isinstance(source, (str, Path)) or (
        isinstance(source, (list, tuple))
        and bool(source)
        and all(isinstance(s, (str, Path)) for s in source)
    )


def _parquet(paths: Sequence[str]) -> bool:
    kinds = {p.endswith(".parquet") for p in paths}
    if len(kinds) > 1:
        raise LeadDSLError("mix of Parquet and NDJSON files in one input; give one kind")
    return kinds == {True}


def _records(con: Any, source: Source, name: str) -> Iterator[tuple[str, Any]]:
    # (A relation's rows are fetched by its own connection: contacts and accounts are small.)
    """Records of a small input (contacts, accounts) with where each came from."""
    if _is_paths(source):
        paths = _paths(source)  # type: ignore[arg-type]
        for path in paths:
            if path.endswith(".parquet"):
                rel = con.read_parquet(path)
                yield from _rows(rel, f"{path} row")
            else:
                yield from read_ndjson(path)
        return
    if isinstance(source, Iterable) and not hasattr(source, "fetchall") and not _arrow(source):
        for i, rec in enumerate(source):
            yield f"{name}[{i}]", rec
        return
    yield from _rows(_relation(con, source), f"{name} row")


def _arrow(source: object) -> bool:
    return type(source).__module__.startswith("pyarrow")


def _relation(con: Any, source: Any) -> Any:
    if hasattr(source, "fetchall") and hasattr(source, "columns"):
        return source  # a DuckDB relation
    if _arrow(source):
        return con.from_arrow(source)
    raise LeadDSLError(f"cannot read {type(source).__name__} as records")


def _rows(rel: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    names = rel.columns
    for i, row in enumerate(rel.fetchall(), 1):
        yield f"{prefix} {i}", {k: v for k, v in zip(names, row, strict=True) if v is not None}


# ---- contacts and accounts ----------------------------------------------------------------


def _normalized(value: object) -> tuple[str | None, str | None, float | None, bool | None, bool]:
    """An attribute as the compiled SQL reads it (text, folded text, number, boolean,
    present), typed as the Python evaluator types it."""
    if _missing(value):
        return None, None, None, None, False
    if isinstance(value, bool):
        return None, None, None, value, True
    if isinstance(value, (int, float)):
        text = _as_text(value)
        return text, text.casefold(), float(value), None, True
    text = value if isinstance(value, str) else str(value)
    return text, text.casefold(), None, None, True


def _normalized_columns(values: Sequence[object], pa: Any) -> list[Any]:
    """The five normalized columns (text, folded text, number, boolean, present) of one
    attribute's values, as Arrow arrays: each distinct value normalized once, then spread."""
    kinds = set(map(type, values))
    if bool in kinds or not kinds <= {str, int, float, type(None)}:
        # Booleans equal 1 and 0 as keys, lists are not keys: one value at a time.
        rows = [_normalized(v) for v in values]
        columns = list(zip(*rows, strict=True)) if rows else [()] * 5
        return [pa.array(list(c), kind) for c, kind in zip(columns, _kinds(pa), strict=True)]
    # Equal numbers (1 and 1.0) normalize alike; text never equals a number.
    index: dict[object, int] = {}
    codes = [index.setdefault(v, len(index)) for v in values]
    distinct = [_normalized(v) for v in index]
    take = pa.array(codes, pa.int32())
    return [pa.array([d[j] for d in distinct], kind).take(take)
            for j, kind in enumerate(_kinds(pa))]


def _kinds(pa: Any) -> tuple[Any, ...]:
    return (pa.string(), pa.string(), pa.float64(), pa.bool_(), pa.bool_())


def _arrow_table(con: Any, name: str, ids: Sequence[str], records: Sequence[Mapping[str, Any]],
                 attributes: Sequence[str], extra: Mapping[str, Any] | None = None) -> None:
    """A table of ids (and ``extra`` columns) with the normalized columns of each attribute the
    rules read, handed to DuckDB as an Arrow table: no SQL text carries their values or names."""
    pa = require("pyarrow", "batch")
    data: dict[str, Any] = {"id": pa.array(list(ids), pa.string()), **(extra or {})}
    for attr in attributes:
        arrays = _normalized_columns([rec.get(attr) for rec in records], pa)
        data.update(zip(attribute_columns(attr), arrays, strict=True))
    con.register(name, pa.table(data))


def _stage_contacts(con: Any, engine: Engine, attributes: Sequence[str]) -> None:
    """The contacts table: id and the normalized columns of each attribute the rules read."""
    _arrow_table(con, "leaddsl_contacts", list(engine._attrs), list(engine._attrs.values()),
                 attributes)


# ---- events -------------------------------------------------------------------------------

_EVENT_COLUMNS = {"id": "VARCHAR", "contact": "VARCHAR", "at": "VARCHAR", "action": "VARCHAR",
                  "object": "VARCHAR", "name": "VARCHAR"}


def _time_sql(kind: str) -> str:
    """Epoch seconds from the `at` column of a given type; NULL when it cannot be read."""
    if kind.startswith("TIMESTAMP") or kind == "DATE":
        return 'epoch(CAST("at" AS TIMESTAMPTZ))'
    if kind in ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "DECIMAL"):
        return 'CAST("at" AS DOUBLE)'
    # Text: ISO 8601 (no offset: UTC, the session's time zone), else a number of seconds.
    return ('coalesce(epoch(TRY_CAST("at" AS TIMESTAMPTZ)), '
            'TRY_CAST(TRY_CAST("at" AS VARCHAR) AS DOUBLE))')


def _stage_events(con: Any, source: Source, tmp: Path, lenient: bool = False) -> list[str] | None:
    """The view leaddsl_raw_ev(id, contact, at_text, t, action, object, name) over the input.

    Returns the NDJSON paths (None for other inputs). ``lenient``: skip lines that are not JSON
    (after they were found, to be reported by the Python reader).
    """
    paths: list[str] | None = None
    if _is_paths(source):
        files = _paths(source)  # type: ignore[arg-type]
        if _parquet(files):
            rel = con.read_parquet(files)
        else:
            paths = files
            rel = con.read_json(files, format="newline_delimited", columns=_EVENT_COLUMNS,
                                ignore_errors=lenient)
    else:
        # A relation of another connection (or an Arrow table) is staged as a Parquet file
        # that this connection reads: streamed by DuckDB, never through Python.
        staged = tmp / "events.parquet"
        _relation(con, source).write_parquet(str(staged))
        rel = con.read_parquet(str(staged))
    have = {c.lower(): str(t).upper() for c, t in zip(rel.columns, rel.types, strict=True)}
    if "at" not in have or "action" not in have or "contact" not in have:
        raise LeadDSLError("events need the columns contact, action and at; got "
                           + ", ".join(rel.columns))
    rel.create_view("leaddsl_raw", replace=True)

    def text(c: str) -> str:
        return f'CAST("{c}" AS VARCHAR)' if c in have else "NULL::VARCHAR"

    con.execute(
        "CREATE OR REPLACE TEMP VIEW leaddsl_raw_ev AS SELECT "
        f"{text('id')} AS id, {text('contact')} AS contact, {text('at')} AS at_text, "
        f"{_time_sql(have['at'])} AS t, {text('action')} AS action, {text('object')} AS object, "
        f"{text('name')} AS name FROM leaddsl_raw"
    )
    return paths


def _stage_records(con: Any, records: Iterable[Mapping[str, Any]], tmp: Path) -> str:
    """Events given as mappings: written to a file DuckDB reads, keeping the record format."""
    staged = tmp / "events.ndjson"
    with open(staged, "wb") as f:
        for rec in records:
            f.write(orjson.dumps(rec, default=str) + b"\n")
    return str(staged)


_BAD = f"""(e.action IS NULL OR e.action = '' OR e.at_text IS NULL OR e.t IS NULL
    OR e.t < {MIN_TIME!r} OR e.t > {MAX_TIME!r} OR e.contact IS NULL
    OR NOT (e.contact IN (SELECT id FROM leaddsl_contacts)))"""


def _python_rejects(paths: Sequence[str], known: set[str], raise_first: bool,
                    names: Mapping[str, str] | None = None) -> list[Rejected]:
    """The bad events of NDJSON files as the Python path names them (file:line, field)."""
    out: list[Rejected] = []
    for path in paths:
        mine: list[tuple[int, Rejected]] = []
        rejected: list[Rejected] | None = None if raise_first else []
        for source, rec in read_ndjson(path, rejected):
            # Records given in memory are named as the Python path names them: events[i].
            line = int(source.rpartition(":")[2])
            shown = source if names is None else f"{names[path]}[{line - 1}]"
            try:
                ev = check_event(rec, shown, require_contact=True)
                if ev.contact not in known:
                    raise RecordError(f"unknown contact {ev.contact!r}", source=shown,
                                      record_id=ev.id, field="contact")
            except RecordError as err:
                if raise_first:
                    raise
                mine.append((line, Rejected(shown, str(err), rec)))
        # Lines that are not JSON come back apart: put every rejection in line order.
        mine += [(int(r.source.rpartition(":")[2]), r) for r in rejected or []]
        out += [r for _, r in sorted(mine, key=lambda x: x[0])]
    return out


def _sql_rejects(con: Any, raise_first: bool) -> list[Rejected]:
    """Bad events of a Parquet file or relation, named by row."""
    rows = con.execute(
        "SELECT e.rn, e.id, e.contact, e.at_text, e.action, e.object, e.name FROM "
        f"(SELECT rn + 1 AS rn, * EXCLUDE (rn) FROM leaddsl_raw_ev) e WHERE {_BAD} "
        "ORDER BY e.rn" + (" LIMIT 1" if raise_first else "")
    ).fetchall()
    out = []
    for rn, eid, contact, at, action, obj, name in rows:
        rec = {k: v for k, v in (("id", eid), ("contact", contact), ("at", at),
                                 ("action", action), ("object", obj), ("name", name))
               if v is not None}
        source = f"events row {rn}"
        try:
            ev = check_event(rec, source, require_contact=True)
            err = RecordError(f"unknown contact {ev.contact!r}", source=source, record_id=ev.id,
                              field="contact")
        except RecordError as exc:
            err = exc
        if raise_first:
            raise err
        out.append(Rejected(source, str(err), rec))
    return out


def _in_order(con: Any) -> None:
    """Copy the events into a table once: its rowid (``rn``) is their order in the input."""
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = "
                   "'leaddsl_ev_table'").fetchall()[0][0]:
        return
    con.execute("CREATE TEMP TABLE leaddsl_ev_table AS SELECT * FROM leaddsl_raw_ev")
    con.execute("CREATE OR REPLACE TEMP VIEW leaddsl_raw_ev AS "
                "SELECT rowid AS rn, * FROM leaddsl_ev_table")


# Events kept by the checks: an action, a time that can be read, and a contact (known to the
# contacts table where the query checks it).
_VALID = f"""NOT (e.action IS NULL OR e.action = '' OR e.t IS NULL OR e.t < {MIN_TIME!r}
    OR e.t > {MAX_TIME!r} OR e.contact IS NULL)"""

# A far-off reference would overflow 2 ** ((t - r) / h): one pass is taken while every valid
# event's |t - r| / h stays below this, else the two-pass query runs instead.
_REFERENCE = 1.8e9  # 2027-01-15 08:00 UTC
_ONE_PASS_RANGE = 960.0


def _scoring_sql(rules: Ruleset, tests: tuple[P.Cond, ...], fixed: bool,
                 dedup: bool, one_pass: bool = False) -> tuple[str, tuple[float, ...]]:
    """One query over leaddsl_raw_ev: statistics about the events (count, bad ones, ids and
    distinct (contact, id) hashes, the earliest and latest valid time) and the compiled
    script's rows, each row carrying the statistics (one row of them when there are no
    contacts). Returns the query and the half-lives of its decay weights.

    - ``one_pass`` (when :meth:`ContactSQL.one_pass` allows it, without a fixed as-of time):
      the events are aggregated per contact while they are read, beside the statistics (two
      consumers of one scan, neither waiting for the other); decay is taken relative to
      ``_REFERENCE`` and scaled to the as-of time afterwards. Events of unknown contacts are
      aggregated too and left out by the join with the contacts.
    - otherwise two passes: the checked events are kept (a materialized CTE) until their
      statistics give the as-of time, then scored;
    - ``dedup``: two passes keeping the first delivery of each (contact, id) (needs ``rn``);
    - ``fixed``: the as-of time was given (the query reads it from leaddsl_as_of); else it is
      the latest valid event's.
    """
    from sqlglot import exp

    as_of = exp.Subquery(this=exp.select(col("latest")).from_(ident("leaddsl_stats")))
    if one_pass:
        contact_sql = ContactSQL(rules.plan, events="leaddsl_events",
                                 contacts="leaddsl_contacts", as_of_sql=as_of, extra=tests,
                                 reference=_REFERENCE, aggregated="leaddsl_agg")
        compiled = contact_sql.query()
        aggregation = contact_sql.aggregation().select(
            exp.alias_(exp.Count(this=col("t")), "leaddsl:valid", quoted=True),
            exp.alias_(exp.Min(this=col("t")), "leaddsl:earliest", quoted=True), append=True)
        return f"""WITH leaddsl_events AS (
    SELECT e.contact, CASE WHEN {_VALID} THEN e.t END AS t,
        CASE WHEN {_VALID} THEN e.action END AS action, e.object, e.name,
        CASE WHEN e.id IS NOT NULL THEN hash(e.contact, e.id) END AS h
    FROM leaddsl_raw_ev e
), leaddsl_agg AS (
{aggregation.sql(dialect="duckdb")}
), leaddsl_scan AS (
    SELECT count(*) AS n_all,
        count(h) FILTER (WHERE t IS NOT NULL AND contact IS NOT NULL) AS n_ids,
        count(DISTINCT h) FILTER (WHERE t IS NOT NULL AND contact IS NOT NULL) AS n_keys
    FROM leaddsl_events
), leaddsl_stats AS (
    SELECT coalesce(sum("leaddsl:valid"), 0) AS n_valid, min("leaddsl:earliest") AS earliest,
        max(last_t) AS latest
    FROM leaddsl_agg WHERE contact IN (SELECT id FROM leaddsl_contacts)
)
SELECT s.n_all, s.n_all - k.n_valid AS n_bad, s.n_ids, s.n_keys, k.earliest, k.latest, r.*
FROM leaddsl_scan s CROSS JOIN leaddsl_stats k
LEFT JOIN ({compiled.sql(dialect="duckdb")}) r ON true""", tuple(contact_sql._half_lives)
    if fixed:  # (read from a table: the SQL does not depend on the time given)
        as_of = exp.Subquery(this=exp.select(col("v")).from_(ident("leaddsl_as_of")))
    contact_sql = ContactSQL(rules.plan, events="leaddsl_events", contacts="leaddsl_contacts",
                             as_of_sql=as_of, extra=tests)
    rows = contact_sql.query().sql(dialect="duckdb")
    if not dedup:
        # A bad event keeps no contact. Its statistics and the events take two passes over
        # the materialized rows (an id is only needed as its hash, to tell whether any repeats).
        return f"""WITH leaddsl_src AS MATERIALIZED (
    SELECT CASE WHEN {_VALID} AND e.contact IN (SELECT id FROM leaddsl_contacts)
            THEN e.contact END AS contact,
        CASE WHEN e.id IS NOT NULL THEN hash(e.contact, e.id) END AS h,
        e.t, e.action, e.object, e.name
    FROM leaddsl_raw_ev e
), leaddsl_stats AS (
    SELECT count(*) AS n_all, count(*) - count(contact) AS n_bad,
        count(h) FILTER (WHERE contact IS NOT NULL) AS n_ids,
        count(DISTINCT h) FILTER (WHERE contact IS NOT NULL) AS n_keys,
        min(t) FILTER (WHERE contact IS NOT NULL) AS earliest,
        max(t) FILTER (WHERE contact IS NOT NULL) AS latest
    FROM leaddsl_src
), leaddsl_events AS (
    SELECT contact, t, action, object, name FROM leaddsl_src WHERE contact IS NOT NULL
)
{_WITH_STATS}({rows}) r ON true""", ()
    # The first delivery (by rn) of each (contact, id) among the valid events counts: bad
    # events are left out before the deliveries are numbered, as the Python path never
    # takes them in. Here n_ids counts the ids before, n_keys after.
    return f"""WITH leaddsl_src AS MATERIALIZED (
    SELECT CASE WHEN {_VALID} AND e.contact IN (SELECT id FROM leaddsl_contacts)
            THEN e.contact END AS contact, e.id, e.rn, e.t, e.action, e.object, e.name
    FROM leaddsl_raw_ev e
), leaddsl_kept AS (
    SELECT * FROM leaddsl_src WHERE contact IS NOT NULL
    QUALIFY id IS NULL OR row_number() OVER (PARTITION BY contact, id ORDER BY rn) = 1
), leaddsl_stats AS (
    SELECT (SELECT count(*) FROM leaddsl_src) AS n_all,
        (SELECT count(*) - count(contact) FROM leaddsl_src) AS n_bad,
        (SELECT count(id) FROM leaddsl_src WHERE contact IS NOT NULL) AS n_ids,
        count(id) AS n_keys, min(t) AS earliest, max(t) AS latest
    FROM leaddsl_kept
), leaddsl_events AS (
    SELECT contact, t, action, object, name FROM leaddsl_kept
)
{_WITH_STATS}({rows}) r ON true""", ()


_WITH_STATS = """SELECT s.n_all, s.n_bad, s.n_ids, s.n_keys, s.earliest, s.latest, r.*
FROM leaddsl_stats s LEFT JOIN """


_STATS = ("n_all", "n_bad", "n_ids", "n_keys", "earliest", "latest")


def _execute_scoring(con: Any, rules: Ruleset, sql: str) -> Any:
    """Run the scoring query and fetch what the contact rows need, as an Arrow table (read a
    column at a time: far cheaper than Python tuples). With an account block the query's
    rows are kept in a table (leaddsl_scored) that the account query reads."""
    source = f"({sql}) q"
    if rules.plan.account is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE leaddsl_scored AS {sql}")
        source = "leaddsl_scored"
    listed = _built(rules, ("fetched",), lambda: _fetched(rules))
    return con.sql(f"SELECT {listed} FROM {source}").to_arrow_table()


def _fetched(rules: Ruleset) -> str:
    """The columns the contact rows read from the scoring query's rows."""
    from sqlglot import exp

    double = exp.DataType.build("DOUBLE")
    wanted: list[exp.Expr] = [col(c) for c in (*_STATS, "id")]
    for name in [*(f"score:{m.name}" for m in rules.plan.models), "total"]:
        # (A model of whole points is a DECIMAL in SQL; Python would make a Decimal of it.)
        wanted.append(exp.alias_(exp.cast(col(name), double), name, quoted=True))
    wanted += [col(f"label:{k}") for k in rules.plan.label_names]
    wanted += [col(c) for c in ("qualified", "disqualified", "reasons")]
    return ", ".join(w.sql(dialect="duckdb") for w in wanted)


def _statistics(table: Any) -> tuple[int, int, int, int, float | None, float | None]:
    """(events, bad events, event ids, distinct (contact, id) hashes, earliest and latest
    valid time) of a scoring query's result."""
    n_all, n_bad, n_ids, n_keys, earliest, latest = (
        table.column(c)[0].as_py() for c in _STATS)
    return n_all, n_bad, n_ids, n_keys, earliest, latest


def _in_range(earliest: float | None, latest: float | None, half_lives: Sequence[float]) -> bool:
    """Whether one pass's weights 2 ** ((t - r) / h) stayed finite and exact-enough for every
    valid event (|t - r| / h below ``_ONE_PASS_RANGE`` for the shortest half-life)."""
    if earliest is None or latest is None or not half_lives:
        return True
    span = max(abs(earliest - _REFERENCE), abs(latest - _REFERENCE))
    return span / min(half_lives) <= _ONE_PASS_RANGE


def _contact_rows(table: Any, models: Sequence[str], ladders: Sequence[str],
                  stamp: str | None) -> dict[str, dict[str, Any]]:
    """The fetched contact rows as ContactResult.to_dict() gives them, by id."""
    def column(name: str) -> list[Any]:
        return table.column(name).to_pylist()  # type: ignore[no-any-return]

    ids, totals = column("id"), column("total")
    scores = [(m, column(f"score:{m}")) for m in models]
    labels = [(k, column(f"label:{k}")) for k in ladders]
    qualified, disqualified = column("qualified"), column("disqualified")
    reasons = column("reasons")
    rows: dict[str, dict[str, Any]] = {}
    for i, cid in enumerate(ids):
        if cid is None:
            continue  # no contact at all: the row carries only the statistics
        rows[cid] = {
            "id": cid,
            "total": totals[i],
            "scores": {m: values[i] for m, values in scores},
            "labels": {k: values[i] for k, values in labels if values[i] is not None},
            "qualified": bool(qualified[i]),
            "disqualified": bool(disqualified[i]),
            "reasons": reasons[i] or [],
            "as_of": stamp,
        }
    return rows


# ---- the account block ------------------------------------------------------------------


def _stage_accounts(con: Any, engine: Engine, asql: AccountSQL) -> int:
    """The accounts, members and hierarchy tables the account query reads, as Arrow tables;
    returns the hierarchy's height (the longest parent chain)."""
    pa = require("pyarrow", "batch")
    members, hierarchy = account_tables(engine)
    ids = engine.account_ids()
    _arrow_table(con, "leaddsl_accounts", ids, [engine._account_attrs[a] for a in ids],
                 asql.attributes, {"pos": pa.array(range(len(ids)), pa.int64())})
    con.register("leaddsl_members", pa.table({
        "account": pa.array([m[0] for m in members], pa.string()),
        "contact": pa.array([m[1] for m in members], pa.string()),
        "role": pa.array([m[2] for m in members], pa.string()),
        "pos": pa.array([m[3] for m in members], pa.int64()),
    }))
    con.register("leaddsl_hierarchy", pa.table({
        "ancestor": pa.array([h[0] for h in hierarchy], pa.string()),
        "descendant": pa.array([h[1] for h in hierarchy], pa.string()),
        "depth": pa.array([h[2] for h in hierarchy], pa.int64()),
    }))
    return max((h[2] for h in hierarchy), default=0)


def _score_accounts(con: Any, rules: Ruleset, engine: Engine,
                    as_of: float | None) -> list[dict[str, Any]]:
    """The account block run as SQL over the contacts' results (leaddsl.sql.accounts); with
    a rollup and disqualify lines, one height of the hierarchy at a time, leaves first."""
    assert rules.plan.account is not None
    asql: AccountSQL = _built(rules, ("accounts",), lambda: _account_sql(rules))

    def level_sql(level: int | None, done: str | None = None) -> str:
        return _built(rules, ("accounts", level, done),  # type: ignore[no-any-return]
                      lambda: asql.query(level, done).sql(dialect="duckdb"))

    _set_as_of(con, 0.0 if as_of is None else as_of)
    height = _stage_accounts(con, engine, asql)
    if not asql.needs_levels:
        query = level_sql(None)
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE leaddsl_account_rows AS " + level_sql(0))
        for level in range(1, height + 1):
            con.execute("INSERT INTO leaddsl_account_rows "
                        + level_sql(level, "leaddsl_account_rows"))
        query = "SELECT * FROM leaddsl_account_rows"
    when = to_datetime(as_of)
    stamp = None if when is None else when.isoformat()
    plan = rules.plan.account.plan
    models = [m.name for m in plan.models]
    got = {}
    # (Through Arrow: its rows come out as dicts far faster than DuckDB's Python tuples.)
    for rec in con.sql(query).to_arrow_table().to_pylist():
        row = account_row(rec, models, plan.label_names, stamp)
        got[row["id"]] = row
    return [got[a] for a in engine.account_ids()]


def _set_as_of(con: Any, as_of: float | None) -> None:
    """The one-row table leaddsl_as_of(v) that the SQL reads the as-of time from."""
    con.execute("CREATE OR REPLACE TEMP TABLE leaddsl_as_of AS SELECT ?::DOUBLE AS v", [as_of])


def _account_sql(rules: Ruleset) -> AccountSQL:
    """The account block's query builder over the batch tables; the as-of time is read from
    the one-row table leaddsl_as_of, so that the SQL does not depend on it."""
    from sqlglot import exp

    assert rules.plan.account is not None
    as_of = exp.Subquery(this=exp.select(col("v")).from_(ident("leaddsl_as_of")))
    return AccountSQL(rules.plan.account, results="leaddsl_results", members="leaddsl_members",
                      accounts="leaddsl_accounts", hierarchy="leaddsl_hierarchy",
                      as_of_sql=as_of)


# ---- the run --------------------------------------------------------------------------------


def score(
    rules: Ruleset,
    events: Source,
    contacts: Source,
    accounts: Source = (),
    *,
    as_of: object = None,
    backend: str = "duckdb",
    threads: int | None = None,
    errors: str = "raise",
    progress: Progress | None = None,
) -> BatchResult:
    """Score every contact from its whole history, and every account, on DuckDB.

    Args:
        rules: a compiled Ruleset.
        events: NDJSON or Parquet path(s) (globs allowed), a DuckDB relation, an Arrow table,
            or event mappings. Each event has ``contact``, ``action``, ``at`` and optionally
            ``id``, ``object``, ``name``.
        contacts, accounts: the same kinds of input (records as in the Python path).
        as_of: the evaluation time; default the latest event's.
        backend: "duckdb" (the only batch backend; Spark has leaddsl.spark).
        threads: DuckDB threads (default: every core).
        errors: "raise" stops at the first bad record with a RecordError naming its file,
            line and field; "collect" sets every bad record aside in ``rejected``.
        progress: called with (what, count) as the run goes.

    Returns:
        A frozen BatchResult.
    """
    if backend != "duckdb":
        raise LeadDSLError(f"unknown batch backend {backend!r}; use 'duckdb' (for Spark: "
                           "leaddsl.spark.score)")
    if errors not in ("raise", "collect"):
        raise LeadDSLError(f"errors must be 'raise' or 'collect', not {errors!r}")
    if not isinstance(rules, Ruleset):
        raise LeadDSLError(f"score takes a compiled Ruleset, got {type(rules).__name__}")
    duckdb = require("duckdb", "batch")
    require("sqlglot", "batch")
    fixed = None if as_of is None else parse_time(as_of, source="as_of", field="as_of")
    say = progress or (lambda what, n: None)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        if threads is not None:
            con.execute(f"SET threads TO {int(threads)}")
        with tempfile.TemporaryDirectory(prefix="leaddsl-") as tmp, paused_gc():
            return _run(con, duckdb, rules, events, contacts, accounts, fixed, errors, say,
                        Path(tmp))
    finally:
        con.close()


def _run(con: Any, duckdb: Any, rules: Ruleset, events: Source, contacts: Source, accounts: Source,
         fixed: float | None, errors: str, say: Progress, tmp: Path) -> BatchResult:
    # Contacts and accounts, validated and linked as the Python path does.
    engine = Engine(rules)
    # _Sourced: records that carry where they came from (file:line, or "contacts[3]").
    load = engine.load(accounts=_Sourced(_records(con, accounts, "accounts")),  # type: ignore[arg-type]
                       errors=errors)
    rejected = list(load.rejected)
    load = engine.load(contacts=_Sourced(_records(con, contacts, "contacts")),  # type: ignore[arg-type]
                       errors=errors)
    rejected += load.rejected
    say("contacts read", len(engine._attrs))
    tests = () if rules.plan.account is None else member_conditions(rules.plan.account)
    compiler_attrs = _built(rules, ("attributes",),
                            lambda: ContactSQL(rules.plan, extra=tests).attributes)
    _stage_contacts(con, engine, compiler_attrs)

    # Events: one query reads them once, finds the bad ones, repeated ids and the latest
    # time, and scores. Only when an id repeats are the events copied into a table, whose row
    # order is the input's (the first delivery of an id counts), and scored again.
    names: dict[str, str] | None = None
    if isinstance(events, Iterable) and not _is_paths(events) and not hasattr(
            events, "fetchall") and not _arrow(events):
        staged_file = _stage_records(con, events, tmp)  # type: ignore[arg-type]
        names = {staged_file: "events"}
        events = [staged_file]
    paths = _stage_events(con, events, tmp)
    one_pass = fixed is None and ContactSQL.one_pass(rules.plan, tests)
    _set_as_of(con, fixed)

    def scoring(dedup: bool, one: bool) -> tuple[Any, tuple[float, ...]]:
        given = fixed is not None
        sql, half_lives = _built(rules, ("contacts", given, dedup, one),
                                 lambda: _scoring_sql(rules, tests, given, dedup, one))
        return _execute_scoring(con, rules, sql), half_lives

    broken = False
    try:
        cur, half_lives = scoring(False, one_pass)
    except duckdb.Error as exc:  # a line that is not JSON, a value that cannot be cast
        if paths is None:
            raise LeadDSLError(f"cannot read the events: {exc}") from None
        broken = True
        _stage_events(con, events, tmp, lenient=True)
        cur, half_lives = scoring(False, one_pass)
    n_all, n_bad, n_ids, n_keys, earliest, latest = _statistics(cur)
    if not _in_range(earliest, latest, half_lives):
        # Events too far from one pass's reference time for its weights: two passes.
        cur, _ = scoring(False, False)
        n_all, n_bad, n_ids, n_keys, earliest, latest = _statistics(cur)
    say("events read", n_all)
    if n_bad or broken:
        if paths is not None:
            found = _python_rejects(paths, set(engine._attrs), errors == "raise", names)
        else:
            _in_order(con)
            found = _sql_rejects(con, errors == "raise")
        if len(found) < n_bad:
            raise LeadDSLError(f"{n_bad} events are invalid but only {len(found)} could be "
                               "named; nothing was scored")
        rejected += found
    n_events, duplicates = n_all - n_bad, 0
    # (Equal hashes may hide no repetition; then the exact pass finds none. One pass also
    # counts the ids of unknown contacts' events: a repetition among them takes this path.)
    if n_ids != n_keys:
        _in_order(con)
        cur, _ = scoring(True, False)
        n_all, n_bad, n_ids, n_keys, earliest, latest = _statistics(cur)
        duplicates = n_ids - n_keys  # the ids before and after keeping first deliveries
        n_events = n_all - n_bad - duplicates
    as_of = fixed if fixed is not None else latest

    # The contact rows.
    when = to_datetime(as_of)
    stamp = None if when is None else when.isoformat()
    rows = _contact_rows(cur, [m.name for m in rules.plan.models], rules.plan.label_names, stamp)
    say("contacts scored", len(rows))
    ordered = [rows[c] for c in engine.contact_ids()]
    scored_accounts: list[dict[str, Any]] = []
    if rules.plan.account is not None:
        con.execute("CREATE OR REPLACE TEMP VIEW leaddsl_results AS SELECT * FROM "
                    "leaddsl_scored WHERE id IS NOT NULL")
        scored_accounts = _score_accounts(con, rules, engine, as_of)
        say("accounts scored", len(scored_accounts))
    return BatchResult(
        contacts=tuple(ordered),
        accounts=tuple(scored_accounts),
        rejected=tuple(rejected),
        as_of=when,
        events=int(n_events),
        duplicates=int(duplicates),
        orphans=tuple(engine.orphans()),
    )


