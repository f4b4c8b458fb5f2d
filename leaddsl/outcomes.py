"""Outcomes: what sales reported back, read from NDJSON, CSV or records and validated.

An outcome names a contact or an account, whether it was ``won``, ``lost`` or is still
``open``, when that was decided (``at``) and optionally the deal's ``value``. Like every other
record, a bad one raises a RecordError naming the file and line (or ``outcomes[3]``) and the
field, or, with ``errors="collect"``, is set aside with its reason.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from .errors import LeadDSLError, RecordError
from .records import Rejected, parse_time, read_ndjson

__all__ = ["Outcome", "Outcomes", "read_outcomes", "OUTCOMES"]

OUTCOMES = ("won", "lost", "open")


@attrs.frozen
class Outcome:
    """One reported outcome; ``at`` is in epoch seconds, ``source`` where it was read."""

    subject: str  # "contact" | "account"
    id: str
    outcome: str  # "won" | "lost" | "open"
    at: float
    value: float | None = None
    source: str = attrs.field(default="", eq=False)

    @property
    def decided(self) -> bool:
        return self.outcome != "open"

    @property
    def won(self) -> bool:
        return self.outcome == "won"


@attrs.frozen
class Outcomes:
    """The valid outcomes in input order, and every record set aside."""

    outcomes: tuple[Outcome, ...]
    rejected: tuple[Rejected, ...] = ()

    def __len__(self) -> int:
        return len(self.outcomes)

    def __iter__(self) -> Iterator[Outcome]:
        return iter(self.outcomes)


def check_outcome(rec: object, source: str) -> Outcome:
    """Validate one outcome record; raise RecordError naming the field at fault."""
    if not isinstance(rec, Mapping):
        raise RecordError(f"an outcome must be an object, got {type(rec).__name__}", source=source)
    given = [k for k in ("contact", "account") if rec.get(k) not in (None, "")]
    if len(given) != 1:
        raise RecordError(
            "an outcome names a contact or an account"
            + (", not both" if given else ""),
            source=source,
            field="contact",
        )
    subject = given[0]
    ident = rec[subject]
    if isinstance(ident, int) and not isinstance(ident, bool):
        ident = str(ident)
    if not isinstance(ident, str):
        raise RecordError(f"expected text, got {ident!r}", source=source, field=subject)
    outcome = rec.get("outcome")
    if not isinstance(outcome, str) or outcome.strip().lower() not in OUTCOMES:
        raise RecordError(
            "missing outcome"
            if outcome in (None, "")
            else f"expected won, lost or open, got {outcome!r}",
            source=source,
            record_id=ident,
            field="outcome",
        )
    if rec.get("at") in (None, ""):
        raise RecordError("missing time", source=source, record_id=ident, field="at")
    at = parse_time(rec["at"], source=source, record_id=ident)
    return Outcome(subject, ident, outcome.strip().lower(), at, _value(rec, source, ident), source)


def _value(rec: Mapping[str, Any], source: str, ident: str) -> float | None:
    value = rec.get("value")
    if value is None or value == "":
        return None
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number < 0:
        raise RecordError(
            f"expected an amount of 0 or more, got {value!r}",
            source=source,
            record_id=ident,
            field="value",
        )
    return number


def read_outcomes(
    data: Iterable[Mapping[str, Any]] | str | Path, *, errors: str = "raise"
) -> Outcomes:
    """Read and validate outcomes: records, or an ``.ndjson`` or ``.csv`` file.

    A subject has one outcome: a second record for the same contact or account is an error
    naming both places, as two reports of one deal disagree or repeat each other.

    Args:
        data: outcome mappings, or the path of an NDJSON or CSV file (a header row naming
            ``contact``, ``account``, ``outcome``, ``at``, ``value``; empty cells are absent).
        errors: ``"raise"`` stops at the first bad record; ``"collect"`` sets each aside.

    Raises:
        RecordError: a bad record, with ``errors="raise"``.
        LeadDSLError: the file cannot be read.

    Example:
        >>> read_outcomes([{"contact": "c1", "outcome": "won", "at": "2026-06-01"}]).outcomes[0].won
        True
    """
    if errors not in ("raise", "collect"):
        raise LeadDSLError(f"errors must be 'raise' or 'collect', not {errors!r}")
    rejected: list[Rejected] | None = [] if errors == "collect" else None
    found: list[Outcome] = []
    first: dict[tuple[str, str], str] = {}
    try:
        for source, rec in _sourced(data, rejected):
            try:
                if isinstance(rec, dict) and None in rec:  # csv puts extra cells under None
                    raise RecordError("more cells than the header names", source=source)
                outcome = check_outcome(rec, source)
                key = (outcome.subject, outcome.id)
                if key in first:
                    raise RecordError(
                        f"a second outcome for {outcome.subject} {outcome.id!r} "
                        f"(the first is at {first[key]})",
                        source=source,
                        record_id=outcome.id,
                        field=outcome.subject,
                    )
            except RecordError as err:
                if rejected is None:
                    raise
                rejected.append(Rejected(source, str(err), rec))
                continue
            first[key] = source
            found.append(outcome)
    except OSError as exc:
        raise LeadDSLError(f"cannot read outcomes file {str(data)!r}: {exc.strerror}") from None
    return Outcomes(tuple(found), tuple(rejected or ()))


def _sourced(
    data: Iterable[Mapping[str, Any]] | str | Path, rejected: list[Rejected] | None
) -> Iterator[tuple[str, Any]]:
    if isinstance(data, (str, Path)):
        if str(data).lower().endswith(".csv"):
            yield from _read_csv(Path(data))
        else:
            yield from read_ndjson(data, rejected)
        return
    if isinstance(data, Outcomes):
        for o in data:
            yield o.source, {o.subject: o.id, "outcome": o.outcome, "at": o.at, "value": o.value}
        return
    if not isinstance(data, Iterable) or isinstance(data, (Mapping, bytes)):
        raise LeadDSLError(
            "outcomes must be records (a list of mappings) or the path of an NDJSON or CSV "
            f"file, got {type(data).__name__}"
        )
    for i, rec in enumerate(data):
        yield f"outcomes[{i}]", rec


def _read_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for row in reader:
            # line_num is where the row ended: the line of a one-line row.
            source = f"{path}:{reader.line_num}"
            yield source, {
                k.strip() if isinstance(k, str) else k: v.strip() if isinstance(v, str) else v
                for k, v in row.items()
            }
