"""Records: reading NDJSON with orjson, parsing times, validating events and contacts.

Every problem becomes a RecordError naming where the record came from (``file:line`` or
``events[3]``), its id and the field. Readers either stop at the first bad record or, with
``errors="collect"``, set each one aside with its reason; nothing is dropped silently.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import orjson

from .errors import RecordError

__all__ = [
    "parse_time",
    "to_datetime",
    "Rejected",
    "read_ndjson",
    "check_event",
    "check_contact",
    "Event",
]

_UTC = UTC
# The times a datetime can hold, a day inside so that any UTC offset still fits.
MIN_TIME = _MIN_TIME = datetime(1, 1, 2, tzinfo=UTC).timestamp()
MAX_TIME = _MAX_TIME = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


def parse_time(
    value: object, *, source: str | None = None, record_id: str | None = None, field: str = "at"
) -> float:
    """Seconds since the epoch for an ISO 8601 text, a datetime or a number of seconds.

    A time without an offset is UTC.
    """
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise RecordError(
                f"cannot read {value!r} as an ISO 8601 time",
                source=source,
                record_id=record_id,
                field=field,
            ) from None
    elif isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        if not _MIN_TIME <= value <= _MAX_TIME:
            raise RecordError(
                f"{value!r} seconds is outside the times a date can hold (years 1 to 9999)",
                source=source,
                record_id=record_id,
                field=field,
            )
        return float(value)
    else:
        raise RecordError(
            f"expected a time, got {value!r}", source=source, record_id=record_id, field=field
        )
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_UTC)
    try:
        epoch = dt.timestamp()
    except (OverflowError, ValueError, OSError):
        epoch = math.inf
    if not _MIN_TIME <= epoch <= _MAX_TIME:
        raise RecordError(
            f"{value!r} is outside the times a date can hold (years 1 to 9999)",
            source=source,
            record_id=record_id,
            field=field,
        )
    return epoch


@functools.lru_cache(maxsize=64)  # a run has one as-of time: every result shares its datetime
def to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, _UTC)


@attrs.frozen
class Event:
    """A validated event: the fields the evaluator reads, with the time in epoch seconds."""

    id: str | None
    contact: str | None
    at: float
    action: str
    object: str | None = None
    name: str | None = None
    channel: str | None = None


def _exact(value: str) -> str:
    """Text as a plain ``str``: a subclass's own ``__str__``, ``__eq__`` and ``__hash__`` never
    run later, and the engine shares equal keys whatever type they came in."""
    return value if type(value) is str else str.__str__(value)


def _opt_text(rec: Mapping[str, Any], key: str, source: str, rid: str | None) -> str | None:
    value = rec.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return _exact(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise RecordError(f"expected text, got {value!r}", source=source, record_id=rid, field=key)


def record_id(rec: Mapping[str, Any]) -> str | None:
    value = rec.get("id")
    if type(value) is str:  # the usual case, first
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return _exact(value)
    return str(value) if isinstance(value, int) else None


def check_event(rec: object, source: str, *, require_contact: bool = False) -> Event:
    """Validate one event record; raise RecordError naming the field at fault."""
    if not isinstance(rec, Mapping):
        raise RecordError(f"an event must be an object, got {type(rec).__name__}", source=source)
    rid = record_id(rec)
    if "id" in rec and rec["id"] is not None and rid is None:
        raise RecordError(f"expected text, got {rec['id']!r}", source=source, field="id")
    action = rec.get("action")
    if not isinstance(action, str) or not action:
        raise RecordError(
            "missing action" if action is None else f"expected text, got {action!r}",
            source=source,
            record_id=rid,
            field="action",
        )
    if "at" not in rec or rec["at"] is None:
        raise RecordError("missing time", source=source, record_id=rid, field="at")
    at = parse_time(rec["at"], source=source, record_id=rid)
    contact = _opt_text(rec, "contact", source, rid)
    if require_contact and contact is None:
        raise RecordError("missing contact", source=source, record_id=rid, field="contact")
    return Event(
        rid,
        contact,
        at,
        _exact(action),
        _opt_text(rec, "object", source, rid),
        _opt_text(rec, "name", source, rid),
        _opt_text(rec, "channel", source, rid),
    )


def check_contact(
    rec: object, source: str, numeric: Iterable[str] = (), *, what: str = "contact"
) -> dict[str, Any]:
    """Validate a contact (or account) record: an id, and numbers where the rules compare numbers.

    Returns the attributes with numeric text ("250") turned into numbers.
    """
    if type(rec) is not dict and not isinstance(rec, Mapping):  # (a dict is one: no ABC check)
        raise RecordError(f"{'an' if what == 'account' else 'a'} {what} must be an object, "
                          f"got {type(rec).__name__}", source=source)
    rid = record_id(rec)
    if rid is None:
        raise RecordError(
            "missing id" if rec.get("id") is None else f"expected text, got {rec.get('id')!r}",
            source=source,
            field="id",
        )
    attrs_ = dict(rec)
    attrs_["id"] = rid
    for name in numeric:
        value = attrs_.get(name)
        if value is None or (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ):
            continue
        if isinstance(value, str):
            if not value.strip():
                attrs_[name] = None
                continue
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    attrs_[name] = number
                    continue
        raise RecordError(
            f"expected a number, got {value!r}", source=source, record_id=rid, field=name
        )
    return attrs_


@attrs.frozen
class Rejected:
    """A record set aside by a reader or a batch, with the reason."""

    source: str
    reason: str
    record: object = None


def read_ndjson(
    path: str | Path, rejected: list[Rejected] | None = None
) -> Iterator[tuple[str, Any]]:
    """Yield ``(source, record)`` for each non-blank line of an NDJSON file.

    A line that is not JSON raises RecordError naming ``file:line``, or, when ``rejected`` is a
    list, is appended there and skipped.
    """
    name = str(path)
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            source = f"{name}:{lineno}"
            try:
                yield source, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                err = RecordError(f"not valid JSON ({exc.msg})", source=source)
                if rejected is None:
                    raise err from None
                rejected.append(Rejected(source, str(err), line.decode("utf-8", "replace")))
