"""Score many contacts at once: records or NDJSON files in, a Scored (results + rejects) out.

The as-of time defaults to the latest event over all the data, so a re-run gives the same
answer. A bad record either stops the run (``errors="raise"``) or is set aside with its reason
(``errors="collect"``); either way, none is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from .errors import LeadDSLError, RecordError
from .records import Rejected, check_contact, check_event, parse_time, read_ndjson, to_datetime
from .results import ContactResult
from .ruleset import Ruleset

__all__ = ["score_all", "Scored"]

Records = Iterable[Mapping[str, Any]] | str | Path
ParsedEvent = tuple[float, str, str, str | None, str | None]


@attrs.frozen
class Scored:
    """Results of a run, by contact id in input order, and every record set aside."""

    results: dict[str, ContactResult]
    rejected: tuple[Rejected, ...]
    as_of: datetime | None
    events: int  # events scored

    def top(
        self, n: int = 10, by: str = "total", where: Callable[[ContactResult], bool] | None = None
    ) -> list[ContactResult]:
        """The ``n`` best contacts by total (or by a model), ties by id; optionally filtered."""
        rows = [r for r in self.results.values() if where is None or where(r)]

        def key(r: ContactResult) -> tuple[float, str]:
            value = r.total if by == "total" else r.scores.get(by, 0.0)
            return (-value, r.id)

        return sorted(rows, key=key)[:n]


def _records(
    data: Records, name: str, rejected: list[Rejected] | None
) -> Iterator[tuple[str, Any]]:
    if isinstance(data, (str, Path)):
        try:
            yield from read_ndjson(data, rejected)
        except OSError as exc:
            raise LeadDSLError(f"cannot read {name} file {str(data)!r}: {exc.strerror}") from None
    else:
        for i, rec in enumerate(data):
            yield f"{name}[{i}]", rec


_fromiso = datetime.fromisoformat
_UTC = UTC


def _fast_event(rec: Any) -> tuple[str, str | None, float, str, str | None, str | None] | None:
    """The fields of a plainly well-formed event, or None to let check_event judge it."""
    # The common case costs a few type checks; anything else takes the validating path,
    # which gives the same values or the error naming the field.
    if type(rec) is not dict:
        return None
    action, at, contact = rec.get("action"), rec.get("at"), rec.get("contact")
    eid, obj, name = rec.get("id"), rec.get("object"), rec.get("name")
    if not (
        type(action) is str
        and action
        and type(at) is str
        and type(contact) is str
        and (eid is None or type(eid) is str)
        and (obj is None or type(obj) is str)
        and (name is None or type(name) is str)
    ):
        return None
    try:
        dt = _fromiso(at)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_UTC)
    return contact, eid, dt.timestamp(), action, obj, name


def score_all(
    rules: Ruleset,
    contacts: Records,
    events: Records = (),
    *,
    as_of: object = None,
    errors: str = "raise",
) -> Scored:
    """Score every contact from its events.

    Args:
        rules: a compiled Ruleset.
        contacts: contact mappings, or the path of an NDJSON file of them.
        events: event mappings (each with a ``contact`` id), or an NDJSON path.
        as_of: the evaluation time; default the latest event time in ``events``.
        errors: ``"raise"`` stops at the first bad record with a RecordError naming it;
            ``"collect"`` sets every bad record aside in ``Scored.rejected`` and goes on.

    Returns:
        A Scored with one ContactResult per valid contact.

    Example:
        >>> rules = compile("when opened email: +1")
        >>> run = score_all(rules, [{"id": "c1"}], [{"id": "e1", "contact": "c1",
        ...     "action": "opened", "object": "email", "at": "2026-01-01T00:00:00Z"}])
        >>> run.results["c1"].total
        1.0
    """
    if errors not in ("raise", "collect"):
        raise LeadDSLError(f"errors must be 'raise' or 'collect', not {errors!r}")
    rejected: list[Rejected] | None = [] if errors == "collect" else None

    def reject(source: str, err: RecordError, record: object) -> None:
        if rejected is None:
            raise err
        rejected.append(Rejected(source, str(err), record))

    people: dict[str, dict[str, Any]] = {}
    for source, rec in _records(contacts, "contacts", rejected):
        try:
            attrs_ = check_contact(rec, source, rules.plan.numeric_attributes)
        except RecordError as err:
            reject(source, err, rec)
            continue
        if attrs_["id"] in people:
            reject(
                source,
                RecordError(
                    "duplicate contact id", source=source, record_id=attrs_["id"], field="id"
                ),
                rec,
            )
            continue
        people[attrs_["id"]] = attrs_

    by_contact: dict[str, list[ParsedEvent]] = {cid: [] for cid in people}
    seen: set[tuple[str, str]] = set()  # (contact, event id): an id counts once per contact
    latest: float | None = None
    count = 0
    for source, rec in _records(events, "events", rejected):
        parsed = _fast_event(rec)
        if parsed is None:  # unusual or bad: the full check names the problem
            try:
                ev = check_event(rec, source, require_contact=True)
            except RecordError as err:
                reject(source, err, rec)
                continue
            parsed = (ev.contact, ev.id, ev.at, ev.action, ev.object, ev.name)  # type: ignore[assignment]
        contact, eid, at, action, obj, name = parsed  # type: ignore[misc]
        bucket = by_contact.get(contact)
        if bucket is None:
            reject(
                source,
                RecordError(
                    f"unknown contact {contact!r}", source=source, record_id=eid, field="contact"
                ),
                rec,
            )
            continue
        if eid is None:
            eid = source  # a name for explain(); never deduplicated
        elif (contact, eid) in seen:
            continue  # the same event delivered twice counts once
        else:
            seen.add((contact, eid))
        bucket.append((at, eid, action, obj, name))
        count += 1
        if latest is None or at > latest:
            latest = at

    when = latest if as_of is None else parse_time(as_of, source="as_of", field="as_of")
    results = {
        cid: rules.score_parsed(attrs_, by_contact[cid], when) for cid, attrs_ in people.items()
    }
    return Scored(results, tuple(rejected or ()), to_datetime(when), count)
