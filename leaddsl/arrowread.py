"""Event files read by columns: a block of NDJSON parsed by pyarrow (``leaddsl[fast]``).

Parsing lines into Python dicts makes several short-lived objects per event, and with a
million events retained around them the heap fragments: every later pass over a chunk misses
the cache. Arrow parses a block in C++ into columns; Python then makes only what the engine
keeps (ids, times, event tuples) and one string per distinct contact, action, object and name
of the block.

A block is taken only when it is plainly one event object per line with exactly the fields
events have, each text or null, valid UTF-8 — then orjson would read the same values line by
line. Anything else (another field, a number where text belongs, a repeated key, a blank
line, spaces around the objects, ``\\r\\n``) returns None and the block is read as dicts,
which names every bad line as before.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

__all__ = ["read_block", "text", "coded", "keys", "times", "text_times"]

FIELDS = ("id", "contact", "action", "at", "object", "name", "channel")
REQUIRED = ("id", "contact", "action", "at")
_PARSE = pj.ParseOptions(
    explicit_schema=pa.schema([(f, pa.string()) for f in FIELDS]),
    unexpected_field_behavior="error",
)


def read_block(buf: bytes, lines: int) -> pa.Table | None:
    """The block's ``lines`` events as a table, or None when it is not plainly so.

    Rows and lines correspond: raw newlines occur in JSON only between values, so when every
    newline sits between ``}`` and ``{`` and there are as many rows as lines, each line holds
    one object.
    """
    if not (buf.startswith(b"{") and (buf.endswith(b"}\n") or buf.endswith(b"}"))):
        return None
    if buf.count(b"}\n{") != lines - 1:
        return None
    try:
        table = pj.read_json(
            io.BytesIO(buf),
            read_options=pj.ReadOptions(use_threads=False, block_size=len(buf) + 1),
            parse_options=_PARSE,
        )
        table.validate(full=True)  # valid UTF-8, which the parser does not check
    except (pa.ArrowException, ValueError):
        return None
    if table.num_rows != lines:
        return None
    if any(table.column(f).null_count for f in REQUIRED):
        return None  # missing: the record path names the field
    if pc.any(pc.equal(table.column("action"), "")).as_py():
        return None
    return table


# Times in the one common form that pyarrow and datetime.fromisoformat read alike: a full
# date and time, 0, 3 or 6 decimals, Z or an offset. Anything else is parsed by Python.
_ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?(Z|[+-]\d{2}:\d{2})$"


def times(table: pa.Table) -> list[float] | None:
    """The ``at`` column as POSIX seconds, the value ``datetime.timestamp()`` gives (whole
    microseconds / 1e6, rounded once), or None when some time is not in the common form or
    not a valid date (Python then parses them, and names what is wrong)."""
    at = table.column("at")
    if not _common_form(at):
        return None
    try:
        micros = pc.cast(at, pa.timestamp("us", "UTC")).cast(pa.int64())
    except pa.ArrowException:
        return None
    span = pc.min_max(micros)
    if not (-_EXACT <= span["min"].as_py() and span["max"].as_py() <= _EXACT):
        return None  # past 2255: no longer exact in a double before dividing; Python's way
    return pc.divide(micros, 1e6).to_pylist()  # type: ignore[no-any-return]


_EXACT = 2**53  # microseconds a double holds exactly


def _common_form(at: pa.ChunkedArray) -> bool:
    """Whether every time is in the common form (``_ISO``). Times that are all 20 characters
    ending in ``Z`` need no pattern (which costs more than the parse): the only such form
    pyarrow reads is ``YYYY-MM-DDTHH:MM:SSZ`` (or a space for the ``T``, which Python reads
    alike), and it checks each digit and separator itself, failing the block otherwise."""
    span = pc.min_max(pc.binary_length(at))
    if span["min"].as_py() == span["max"].as_py() == 20 and pc.all(pc.ends_with(at, "Z")).as_py():
        return True
    return bool(pc.all(pc.match_substring_regex(at, _ISO)).as_py())


def text_times(values: list[Any]) -> list[float] | None:
    """``times`` for the times of records given in memory, or None (Python checks and parses
    them): the values need not have been checked, anything but ``str`` gives None.

    (Ordering such records by contact, as ``by_contact`` does, was tried: the reads of the
    records' own strings spread over memory cost more than the scoring gained.)
    """
    try:
        column = pa.array(values)  # (inferred: any value that is not text fails, or is seen)
    except (pa.ArrowException, UnicodeError):
        return None  # not text, or a lone surrogate: Python's checks and parse name it
    if column.type != pa.string() or column.null_count:
        return None  # bytes or None among them
    return times(pa.table({"at": column}))


def by_contact(table: pa.Table) -> pa.Table:
    """The rows ordered by contact, each contact's in their order (the sort is stable): the
    Python objects made from them then lie together in memory for each contact, which is how
    they are scored. The ``channel`` column, checked by ``read_block`` and kept by no event,
    is left out of the sort."""
    codes = pc.dictionary_encode(table.column("contact")).combine_chunks().indices
    kept = table.select(["id", "contact", "action", "at", "object", "name"])  # not channel
    return kept.take(pc.sort_indices(codes))  # small integers sort faster than text


def text(table: pa.Table, field: str) -> list[Any]:
    """A column as one Python object per row."""
    return table.column(field).to_pylist()  # type: ignore[no-any-return]


def coded(table: pa.Table, field: str) -> tuple[list[Any], list[Any]]:
    """A column of few distinct values as a list per row, and the distinct values: one
    Python string per distinct value, not per row."""
    encoded = pc.dictionary_encode(table.column(field)).combine_chunks()
    values = encoded.dictionary.to_pylist()
    indices = encoded.indices
    if indices.null_count:
        indices = indices.fill_null(len(values))
        values.append(None)
    return list(map(values.__getitem__, indices.to_pylist())), values


def keys(table: pa.Table) -> tuple[list[int], list[tuple[Any, Any, Any]]]:
    """Each row's (action, object, name) as a number, and the distinct triples by number: the
    triples are told apart in arrow (a code per column, combined), so Python makes one
    tuple per distinct key, not per row."""
    columns = []
    for field in ("action", "object", "name"):
        encoded = pc.dictionary_encode(table.column(field)).combine_chunks()
        values = encoded.dictionary.to_pylist()
        columns.append((encoded.indices.fill_null(len(values)), [*values, None]))
    (a, a_values), (o, o_values), (n, n_values) = columns
    no, nn = len(o_values), len(n_values)
    combined = pc.add(pc.multiply(pc.add(pc.multiply(a.cast(pa.int64()), no), o.cast(pa.int64())),
                                  nn), n.cast(pa.int64()))
    encoded = pc.dictionary_encode(combined)
    triples = [(a_values[c // (no * nn)], o_values[c // nn % no], n_values[c % nn])
               for c in encoded.dictionary.to_pylist()]
    return encoded.indices.to_pylist(), triples
