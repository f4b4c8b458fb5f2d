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
from typing import Annotated, Any, cast

import attrs
import orjson

from .errors import LeadDSLError, RecordError
from .records import MAX_TIME, MIN_TIME

__all__ = ["BadLine", "Chunk", "Columns", "Sourced", "chunks", "plain_columns"]

CHUNK = 65_536  # records per chunk: big enough for C passes to pay, small for memory
_LINE_BYTES = 1 << 23  # NDJSON read per chunk (readlines hint)
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

    A chunk read by the typed reader holds ``PlainEvent`` records; ``as_dicts()`` reads its
    lines again as dicts when it must go record by record.
    """

    records: list[Any]
    name_of: Callable[[int], str]
    lines: tuple[str, int, list[bytes]] | None = None  # (path, first line number, lines)

    def as_dicts(self) -> Chunk:
        if self.lines is None:
            return self
        return _parsed(*self.lines)


Event = tuple[float, str, str, str | None, str | None]  # (at, id, action, object, name)


@attrs.frozen
class Columns:
    """A plain chunk's events in the order given, with their contacts, ready to take in."""

    contacts: list[str]  # the i-th event's contact
    events: list[Event]
    ids: list[str]
    unique: set[str]  # the ids, all new
    touched: set[str]  # the contacts, all known
    latest: float

    @property
    def count(self) -> int:
        return len(self.events)


def chunks(data: Any, name: str, typed: bool = False) -> Iterator[Chunk]:
    """``data`` (records, an NDJSON path, or (source, record) pairs) in chunks.

    A line of an NDJSON file that is not JSON comes as a BadLine in its place; blank lines are
    skipped. (A chunk is read before it is checked: after a bad record stops a load, the
    records that followed it in the chunk were read but not taken in.) ``typed``: read event
    files with the typed reader when msgspec is installed (see ``PlainEvent``).
    """
    if isinstance(data, (str, Path)):
        try:
            yield from _file_chunks(str(data), typed and _decode is not None)
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


def _file_chunks(path: str, typed: bool) -> Iterator[Chunk]:
    lineno = 0
    with open(path, "rb") as f:
        while True:
            lines = f.readlines(_LINE_BYTES)
            if not lines:
                return
            first = lineno + 1
            lineno += len(lines)
            if typed:
                assert _decode is not None
                try:
                    recs = list(map(_decode, lines))
                except _DecodeError:
                    pass  # anything unusual: as dicts, then record by record
                else:
                    yield Chunk(recs, _numbered(path, range(first, lineno + 1)),
                                (path, first, lines))
                    continue
            yield _parsed(path, first, lines)


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


try:  # the typed reader: optional (pip install 'leaddsl[fast]')
    import msgspec
except ImportError:  # pragma: no cover - every extra is installed for the tests
    _decode: Callable[[bytes], Any] | None = None
    _DecodeError: type[Exception] = Exception
else:

    class PlainEvent(msgspec.Struct, gc=False, forbid_unknown_fields=True):
        """An event line as the typed reader takes it, typed while it is parsed (in C): text
        id, contact, action (not empty) and time; text or absent object, name and channel;
        no other field. Any other line makes its chunk go as dicts (orjson), then record by
        record. (Other fields are refused because msgspec would skip them unparsed, so a
        line that orjson finds is not JSON, say a number like 1e400 there, would get in.)"""

        id: str
        contact: str
        action: Annotated[str, msgspec.Meta(min_length=1)]
        at: str
        object: str | None = None
        name: str | None = None
        channel: str | None = None

    _decode = msgspec.json.Decoder(PlainEvent).decode
    _DecodeError = msgspec.DecodeError  # ValidationError is one


_fields = attrgetter("action", "at", "contact", "id", "object", "name")


def _dict_columns(recs: list[Any]) -> tuple[list[Any], ...] | None:
    """The columns of a chunk of dicts, when their types are plain (see plain_columns)."""
    if set(map(type, recs)) != {dict}:
        return None
    get = dict.get
    actions = list(map(get, recs, repeat("action")))
    ats = list(map(get, recs, repeat("at")))
    contacts = list(map(get, recs, repeat("contact")))
    ids = list(map(get, recs, repeat("id")))
    if not (
        _TEXT.issuperset(map(type, actions))
        and _TEXT.issuperset(map(type, ats))
        and _TEXT.issuperset(map(type, contacts))
        and _TEXT.issuperset(map(type, ids))
        and "" not in actions
    ):
        return None
    objects = list(map(get, recs, repeat("object")))
    names = list(map(get, recs, repeat("name")))
    if not (
        _OPTIONAL.issuperset(map(type, objects))
        and _OPTIONAL.issuperset(map(type, names))
        and _OPTIONAL.issuperset(map(type, map(get, recs, repeat("channel"))))
    ):
        return None
    return actions, ats, contacts, ids, objects, names


def plain_columns(
    recs: list[Any], known: Mapping[str, object], seen: set[str], words: dict[Any, Any]
) -> Columns | None:
    """The chunk's events when every record is plain, else None (check them one by one).

    Plain: a dict with text ``action`` (not empty), ``at``, ``contact`` and ``id``; ``object``,
    ``name`` and ``channel`` text or absent; ``at`` an ISO time in range (UTC when it has no
    offset); the contact in ``known``; ids unique in the chunk and not in ``seen``. These are
    the checks ``check_event`` makes on such records; nothing here mutates anything but
    ``words``, where actions, objects and names are shared: a history repeats a few words a
    million times, and the evaluator's lookups compare equal words faster when they are one
    object (less memory, too).
    """
    if not recs:
        return None
    if _decode is not None and type(recs[0]) is PlainEvent:  # typed as read: a chunk is all so
        rows = zip(*map(_fields, recs), strict=True)
        actions, ats, contacts, ids, objects, names = map(list, rows)
    else:
        columns = _dict_columns(recs)
        if columns is None:
            return None
        actions, ats, contacts, ids, objects, names = columns
    unique = set(ids)
    if len(unique) != len(ids) or not seen.isdisjoint(unique):
        return None  # duplicates: the record-by-record path counts them
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
    touched = set(contacts)
    if not known.keys() >= touched:
        return None  # an unknown contact (or not text): the record-by-record path names it
    share = words.setdefault
    actions = list(map(share, actions, actions))
    objects = list(map(share, objects, objects))
    names = list(map(share, names, names))
    # The checks above made these text (mypy cannot follow them).
    events = list(
        zip(times, cast(list[str], ids), cast(list[str], actions), objects, names, strict=True)
    )
    return Columns(cast(list[str], contacts), events, cast(list[str], ids),
                   cast(set[str], unique), cast(set[str], touched), hi)
