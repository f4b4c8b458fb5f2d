"""Bulk event loading by columns: a chunk of plain events checked with a few C-level passes.

Loading a history is mostly checking records, and a Python loop of checks costs microseconds
per event. A chunk whose events are all plain — objects with text where text belongs, ISO
times, ids unique and new, known contacts — is checked column by column instead (``map`` and
``set`` run in C) and taken in at once. Any chunk with anything unusual declines, and the
engine checks that chunk record by record, which names every bad record as before. Both ways
give the same events, so this is a speed path only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import islice, repeat
from operator import attrgetter
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import attrs
import orjson

from .errors import LeadDSLError, RecordError
from .records import MAX_TIME, MIN_TIME

__all__ = ["BadLine", "Chunk", "Columns", "Event", "Key", "Sourced", "chunks", "plain_columns",
           "share_key", "shared_keys"]

# Records per chunk given in memory. Small enough that a chunk's dicts and strings stay in
# the CPU caches across the column passes: at 65,536 records a chunk's objects (about 50 MB)
# were fetched from memory on every pass, and loading a million dicts took 0.2-0.3 s more.
CHUNK = 4_096
# Records given in memory: from this many in a chunk, their times are parsed by arrow. Fewer
# parse as fast with datetime, and need no pyarrow import (about 66 ms, once).
ARROW_TIMES = 4_096
_LINE_BYTES = 1 << 23  # NDJSON read per chunk (readlines hint)
# Distinct (action, object, name) keys an engine shares. A history has a few hundred; one
# with a different name on nearly every event would otherwise keep a tuple and an entry for
# each. Past this, events keep their own key tuples.
KEYS = 200_000
_STR, _NONE = str, type(None)
_TEXT = frozenset({_STR})
_OPTIONAL = frozenset({_STR, _NONE})
_tzinfo = attrgetter("tzinfo")
_timestamp = datetime.timestamp
_fromiso = datetime.fromisoformat


class Sourced(list[tuple[str, Any]]):
    """Records that already know where they came from (reopened from a store)."""


@attrs.frozen
class Chunk:
    """Records and how to name the i-th one in an error (``file:line`` or ``events[i]``).

    A block of an event file read by columns holds a ``table`` instead of records, and
    ``as_dicts()`` reads its lines again as dicts when it must go record by record.
    """

    records: list[Any]
    name_of: Callable[[int], str]
    table: Any = None  # a pyarrow Table (see leaddsl.arrowread)
    block: tuple[str, int, bytes] | None = None  # (path, first line number, its bytes)

    @property
    def size(self) -> int:
        return len(self.records) if self.table is None else int(self.table.num_rows)

    def as_dicts(self) -> Chunk:
        if self.block is None:
            return self
        path, first, buf = self.block
        lines = buf.split(b"\n")
        if buf.endswith(b"\n"):
            lines.pop()
        return _parsed(path, first, lines)


# An event as an engine keeps it: (at, id, key). The key, (action, object, name), is one
# shared tuple per distinct key: a history repeats a few hundred keys a million times, and the
# evaluators find an event's rules by its key, so each event holds one pointer and each lookup
# finds the very tuple it was memoized with.
Key = tuple[str, str | None, str | None]
Event = tuple[float, str, Key]


@attrs.frozen
class Columns:
    """A plain chunk's events with their contacts (each contact's in the order given), ready to
    take in once its ids are (``SeenIds.add_new``)."""

    contacts: list[str]  # the i-th event's contact
    logs: list[list[Event]]  # the i-th event's contact's log (the engine's list)
    events: list[Event]
    ids: list[str]
    distinct: set[str] | None  # the contacts, when the reader found them anyway
    latest: float

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def touched(self) -> set[str]:
        """The contacts of the chunk (worked out when asked: a first load never asks)."""
        return self.distinct if self.distinct is not None else set(self.contacts)


def chunks(data: Any, name: str, typed: bool = False) -> Iterator[Chunk]:
    """``data`` (records, an NDJSON path, or (source, record) pairs) in chunks.

    A line of an NDJSON file that is not JSON comes as a BadLine in its place; blank lines are
    skipped. (A chunk is read before it is checked: after a bad record stops a load, the
    records that followed it in the chunk were read but not taken in.) ``typed``: read an
    event file by columns when pyarrow is installed (see leaddsl.arrowread).
    """
    if isinstance(data, (str, Path)):
        try:
            reader = _arrow() if typed else None
            if reader is not None:
                yield from _block_chunks(str(data), reader)
            else:
                yield from _file_chunks(str(data))
        except OSError as exc:
            raise LeadDSLError(f"cannot read {name} file {str(data)!r}: {exc.strerror}") from None
        return
    if not isinstance(data, Iterable) or isinstance(data, (Mapping, bytes)):
        raise LeadDSLError(
            f"{name} must be records (a list of mappings) or the path of an NDJSON file, "
            f"got {type(data).__name__}"
        )
    sourced = isinstance(data, Sourced)
    it = iter(data)
    start = 0
    while True:
        part = list(islice(it, CHUNK))
        if not part:
            return
        if sourced:
            names = [s for s, _ in part]
            yield Chunk([r for _, r in part], names.__getitem__)
        else:
            yield Chunk(part, _indexed(name, start))
        start += len(part)


def _indexed(name: str, start: int) -> Callable[[int], str]:
    return lambda i: f"{name}[{start + i}]"


def _numbered(path: str, numbers: Sequence[int]) -> Callable[[int], str]:
    return lambda i: f"{path}:{numbers[i]}"


@attrs.frozen
class BadLine:
    """A line of an NDJSON file that is not JSON, kept in its place among the records: the
    engine sets it aside (or stops there) in line order, after the lines before it."""

    error: RecordError
    text: str


def _file_chunks(path: str) -> Iterator[Chunk]:
    lineno = 0
    with open(path, "rb") as f:
        while True:
            lines = f.readlines(_LINE_BYTES)
            if not lines:
                return
            yield _parsed(path, lineno + 1, lines)
            lineno += len(lines)


def _block_chunks(path: str, reader: ModuleType) -> Iterator[Chunk]:
    """Blocks of whole lines, each read by columns when it is plain (else as dicts)."""
    lineno = 0
    rest = b""
    with open(path, "rb") as f:
        while True:
            block = f.read(_LINE_BYTES)
            buf = rest + block if rest else block
            if block:
                cut = buf.rfind(b"\n") + 1
                if not cut:  # a line longer than a block: read on
                    rest = buf
                    continue
                buf, rest = buf[:cut], buf[cut:]
            elif not buf:
                return
            else:
                rest = b""
            lines = buf.count(b"\n") + (not buf.endswith(b"\n"))
            first = lineno + 1
            lineno += lines
            table = reader.read_block(buf, lines)
            chunk = Chunk([], _numbered(path, range(first, lineno + 1)), table, (path, first, buf))
            yield chunk if table is not None else chunk.as_dicts()


def _parsed(path: str, first: int, lines: list[bytes]) -> Chunk:
    """NDJSON lines as dicts (with orjson), a BadLine in place of a line that is not JSON."""
    loads = orjson.loads
    try:
        recs: list[Any] = list(map(loads, lines))
    except orjson.JSONDecodeError:
        pass  # blank or bad lines in this chunk: line by line
    else:
        return Chunk(recs, _numbered(path, range(first, first + len(lines))))
    recs = []
    numbers: list[int] = []
    for n, line in enumerate(lines, first):
        try:
            recs.append(loads(line))
        except orjson.JSONDecodeError as exc:
            if not line.strip():
                continue
            err = RecordError(f"not valid JSON ({exc.msg})", source=f"{path}:{n}")
            recs.append(BadLine(err, line.decode("utf-8", "replace")))
        numbers.append(n)
    return Chunk(recs, _numbered(path, numbers))


_READER: list[ModuleType | None] = []


def _arrow() -> ModuleType | None:
    """leaddsl.arrowread, imported at first use (pyarrow takes a while to import), or None
    without pyarrow (pip install 'leaddsl[fast]')."""
    if not _READER:
        try:
            from . import arrowread
        except ImportError:  # pragma: no cover - every extra is installed for the tests
            _READER.append(None)
        else:
            _READER.append(arrowread)
    return _READER[0]


def _dict_columns(recs: list[Any], shared: dict[Key, Key]) -> tuple[list[Any], ...] | None:
    """The columns of a chunk of dicts, when their types are plain (see plain_columns), with
    each event's key the shared one (``shared_keys``).

    Each pass over a million records spread over memory costs cache misses, so the types of
    actions, objects and names are checked on the keys new to ``shared`` alone; the contacts
    are checked by the lookup of their logs (an unknown or non-text contact fails it), and
    the times where they are parsed (``plain_columns``).
    """
    if set(map(type, recs)) != {dict}:
        return None
    get = dict.get
    ids = list(map(get, recs, repeat("id")))
    ats = list(map(get, recs, repeat("at")))
    if not (
        _TEXT.issuperset(map(type, ids))
        and _OPTIONAL.issuperset(map(type, map(get, recs, repeat("channel"))))
    ):
        return None
    keys = shared_keys(
        shared,
        zip(_field(recs, "action"), _field(recs, "object"), _field(recs, "name"), strict=True),
    )
    if keys is None:
        return None
    return keys, ats, list(map(get, recs, repeat("contact"))), ids


def _field(recs: list[dict[str, Any]], field: str) -> Iterator[Any]:
    return map(dict.get, recs, repeat(field))


def shared_keys(shared: dict[Key, Key], raw: Iterable[Any]) -> list[Key] | None:
    """The shared key of each (action, object, name) in ``raw``, adding new keys to
    ``shared``; None, with ``shared`` as it was, when a new key is not plain (action text and
    not empty; object and name text or None) or cannot be a key. Past ``KEYS`` shared keys,
    new ones are checked but not kept: each event keeps its own."""
    raw = list(raw)
    known = len(shared)
    try:
        keys: list[Key] | None = list(map(shared.setdefault, raw, raw))
    except Exception:  # not hashable (or a hash that fails): not text either
        keys = None
    if len(shared) == known:
        return keys
    new = list(islice(shared, known, None))
    plain = keys is not None and all(
        type(a) is _STR and a and type(o) in _OPTIONAL and type(n) in _OPTIONAL
        for a, o, n in new
    )
    if not plain or len(shared) > KEYS:
        for key in new:  # a key kept must have been checked, and there is a limit
            del shared[key]
    return keys if plain else None


def share_key(shared: dict[Key, Key], key: Key) -> Key:
    """The shared tuple equal to ``key`` (checked already), kept when new (see shared_keys)."""
    found = shared.get(key)
    if found is not None:
        return found
    if len(shared) < KEYS:
        shared[key] = key
    return key


def plain_columns(
    chunk: Chunk, known: Mapping[str, list[Any]], shared: dict[Key, Key]
) -> Columns | None:
    """The chunk's events when every record is plain, else None (check them one by one).

    Plain: a dict with text ``action`` (not empty), ``at``, ``contact`` and ``id``; ``object``,
    ``name`` and ``channel`` text or absent; ``at`` an ISO time in range (UTC when it has no
    offset); the contact in ``known`` (the engine's logs by contact). These are the checks
    ``check_event`` makes on such records, but for the ids, which the engine takes only when
    all are new and distinct (``SeenIds.add_new``). Nothing here mutates anything but
    ``shared``, the engine's keys (see ``Event``), which gains the chunk's new keys. A chunk
    read by columns (``chunk.table``) had its types and fields checked by the reader; its
    events come ordered by contact, each contact's in the order given.
    """
    table = chunk.table
    distinct: set[str] | None = None
    if table is not None:  # read by columns: types and required fields checked already
        reader = _arrow()
        assert reader is not None
        table = reader.by_contact(table)
        ids = reader.text(table, "id")
        times = reader.times(table)  # or None: parsed by Python below
        ats = reader.text(table, "at") if times is None else []
        contacts, values = reader.coded(table, "contact")
        distinct = set(values)
        codes, triples = reader.keys(table)
        by_code = shared_keys(shared, triples)
        if by_code is None:
            return None
        keys = list(map(by_code.__getitem__, codes))
    else:
        if not chunk.records:
            return None
        columns = _dict_columns(chunk.records, shared)
        if columns is None:
            return None
        keys, ats, contacts, ids = columns
        # Arrow parses the common ISO form for a fraction of what datetime costs.
        reader = _arrow() if len(ats) >= ARROW_TIMES else None
        times = None if reader is None else reader.text_times(ats)
    try:  # the logs to append to; an unknown contact (the record path names it) fails here
        logs = list(map(known.__getitem__, contacts))
    except (KeyError, TypeError):  # (TypeError: not hashable)
        return None
    if times is None:
        if not _TEXT.issuperset(map(type, ats)):
            return None
        try:
            stamps = list(map(_fromiso, cast(list[str], ats)))
            if None in set(map(_tzinfo, stamps)):
                stamps = [d if d.tzinfo is not None else d.replace(tzinfo=UTC) for d in stamps]
            times = list(map(_timestamp, stamps))
        except (ValueError, OverflowError, OSError):
            return None
    lo, hi = min(times), max(times)
    if lo < MIN_TIME or hi > MAX_TIME:
        return None
    # The checks above made these text (mypy cannot follow them).
    events = list(zip(times, cast(list[str], ids), keys, strict=True))
    return Columns(cast(list[str], contacts), logs, events, cast(list[str], ids), distinct, hi)
