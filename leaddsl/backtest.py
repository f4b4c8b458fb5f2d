"""Backtests: a history of records and outcomes, re-scored under a script as of each outcome.

The classic mistake in measuring a scoring model is to score everyone as of today and compare
with outcomes decided months ago: the pricing visits a customer made *after* signing then
"predict" the signature. Here each contact (or account) is scored as of just before its own
outcome, so events at or after the outcome never count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .accounts import AccountResult
from .engine import Engine, Records
from .errors import LeadDSLError, RecordError
from .outcomes import Outcome, Outcomes, read_outcomes
from .records import Rejected, read_ndjson
from .results import ContactResult
from .ruleset import Ruleset

__all__ = ["History", "Case", "Backtest", "backtest", "BEFORE", "held_out"]

BEFORE = 0.001  # seconds: a case is scored this long before its outcome, so ties do not count
NO_CHANNEL = "(none)"


@attrs.frozen
class Case:
    """One outcome with the subject's result as of just before it.

    ``channels`` are the channels of the events that earned the contact points, as of then;
    for an account, those of the events that earned points for its contacts and its
    subsidiaries' contacts. Events without a channel count as ``"(none)"``.
    """

    outcome: Outcome
    result: ContactResult | AccountResult
    channels: tuple[str, ...] = ()


@attrs.frozen
class Backtest:
    """Every outcome of a history re-scored under one script; ``rejected`` what was set aside."""

    rules: Ruleset
    cases: tuple[Case, ...]
    rejected: tuple[Rejected, ...]

    def of(self, subject: str, decided: bool = True) -> list[Case]:
        """The cases about contacts (or accounts), only the won and lost ones by default."""
        return [
            c
            for c in self.cases
            if c.outcome.subject == subject and (c.outcome.decided or not decided)
        ]


class History:
    """Contacts, accounts, events and outcomes, kept to be replayed under any script.

    Records are read once when they are lists; files are read again for each script, since the
    script decides which attributes are numbers (and so which records are valid).

    Example:
        >>> h = History(contacts=[{"id": "c1"}], events=[{"id": "e1", "contact": "c1",
        ...     "action": "visited", "object": "page", "name": "pricing",
        ...     "at": "2026-03-01T00:00:00Z"}],
        ...     outcomes=[{"contact": "c1", "outcome": "won", "at": "2026-03-01T00:00:00Z"}])
        >>> import leaddsl
        >>> h.backtest(leaddsl.compile("when visited pricing: +10")).cases[0].result.total
        0.0
    """

    def __init__(
        self,
        contacts: Records = (),
        accounts: Records = (),
        events: Records = (),
        outcomes: Iterable[Mapping[str, Any]] | str | Path | Outcomes = (),
        *,
        errors: str = "raise",
    ) -> None:
        if errors not in ("raise", "collect"):
            raise LeadDSLError(f"errors must be 'raise' or 'collect', not {errors!r}")
        self.errors = errors
        self.contacts = _keep(contacts)
        self.accounts = _keep(accounts)
        self.events = _keep(events)
        self.outcomes = (
            outcomes if isinstance(outcomes, Outcomes) else read_outcomes(outcomes, errors=errors)
        )
        self._channels: dict[tuple[str, str], str] | None = None

    @classmethod
    def from_dir(
        cls, data: str | Path, outcomes: str | Path | None = None, *, errors: str = "raise"
    ) -> History:
        """A folder of ``contacts.ndjson`` (needed), ``accounts.ndjson``, ``events.ndjson`` and,
        unless ``outcomes`` names a file, ``outcomes.ndjson`` or ``outcomes.csv``."""
        folder = Path(data)
        if not (folder / "contacts.ndjson").is_file():
            raise LeadDSLError(f"no contacts.ndjson in {str(folder)!r}")

        def opt(name: str) -> Path | tuple[()]:
            path = folder / name
            return path if path.is_file() else ()

        if outcomes is None:
            found = [folder / n for n in ("outcomes.ndjson", "outcomes.csv")]
            outcomes = next((p for p in found if p.is_file()), None)
        return cls(
            folder / "contacts.ndjson",
            opt("accounts.ndjson"),
            opt("events.ndjson"),
            () if outcomes is None else outcomes,
            errors=errors,
        )

    def engine(self, rules: Ruleset) -> tuple[Engine, tuple[Rejected, ...]]:
        """An engine holding the whole history under ``rules``, and what it set aside."""
        engine = Engine(rules, transitions=False)
        report = engine.load(
            contacts=self.contacts, accounts=self.accounts, events=self.events, errors=self.errors
        )
        return engine, report.rejected

    def channels(self) -> dict[tuple[str, str], str]:
        """(contact, event id) -> channel, for the events that name one.

        Events without an id are keyed by where they were read, as the engine names them.
        """
        if self._channels is None:
            found: dict[tuple[str, str], str] = {}
            records: Iterable[tuple[str, Any]]
            if isinstance(self.events, (str, Path)):
                records = read_ndjson(self.events, [])  # bad lines: the engine reports them
            else:
                records = ((f"events[{i}]", r) for i, r in enumerate(self.events))
            for source, rec in records:
                if not isinstance(rec, Mapping):
                    continue
                channel, contact, eid = rec.get("channel"), rec.get("contact"), rec.get("id")
                if isinstance(channel, str) and channel and contact is not None:
                    # the first of a resent id, the one the engine counted
                    found.setdefault((str(contact), source if eid is None else str(eid)), channel)
            self._channels = found
        return self._channels

    def backtest(self, rules: Ruleset, *, before: float = BEFORE) -> Backtest:
        """Score each outcome's contact or account as of ``before`` seconds before it."""
        return backtest(rules, self, before=before)


def held_out(ident: str, share: float, seed: int = 0) -> bool:
    """Whether the contact (or account) ``ident`` is in the held-out split of ``share``.

    A hash of the seed and the id alone decides, so the split is the same whatever script
    scores the history and whatever other records it holds: ``tune`` fits on the rest, and
    ``diff`` given the same share and seed measures on exactly the contacts the fit never saw;
    a contact held out stays held out as more outcomes arrive.
    """
    if not 0 < share < 1:
        raise LeadDSLError(f"the held-out share must be between 0 and 1, got {share!r}")
    digest = hashlib.blake2b(f"{seed}\0{ident}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * 2**64


def _keep(data: Records) -> Records:
    if isinstance(data, (str, Path)):
        return data
    if not isinstance(data, Iterable) or isinstance(data, (Mapping, bytes)):
        return data  # the engine names the mistake
    return list(data)


def backtest(
    rules: Ruleset,
    history: History,
    *,
    before: float = BEFORE,
    loaded: tuple[Engine, tuple[Rejected, ...]] | None = None,
) -> Backtest:
    """Re-score every outcome of ``history`` under ``rules``, each as of just before it.

    ``loaded`` is what ``history.engine(rules)`` returned, when the caller has it already:
    the records are then not read again (``diff`` scores the latest state and the outcomes
    with one engine per script).

    Raises:
        RecordError: an outcome names a contact or account the data lacks (with
            ``errors="raise"``; otherwise it is set aside with the reason).
        LeadDSLError: outcomes name accounts but the script has no account block.
    """
    if before < BEFORE:
        raise LeadDSLError(f"before must be at least {BEFORE} seconds, got {before!r}")
    if loaded is not None and loaded[0].rules is not rules:
        raise LeadDSLError("the loaded engine scores with other rules than the backtest's")
    engine, rejected_data = history.engine(rules) if loaded is None else loaded
    rejected = list(history.outcomes.rejected) + list(rejected_data)
    contacts, accounts = set(engine.contact_ids()), set(engine.account_ids())
    if rules.accounts is None and any(o.subject == "account" for o in history.outcomes):
        raise LeadDSLError(
            "the outcomes name accounts but the script has no account block to score them; "
            "add 'account:' with the account rules, or report contact outcomes only"
        )
    channels = history.channels()
    cases = []
    for o in history.outcomes:
        known = contacts if o.subject == "contact" else accounts
        if o.id not in known:
            err = RecordError(
                f"unknown {o.subject} {o.id!r}", source=o.source, record_id=o.id, field=o.subject
            )
            if history.errors == "raise":
                raise err
            rejected.append(Rejected(o.source, str(err), None))
            continue
        at = o.at - before
        result: ContactResult | AccountResult
        if o.subject == "contact":
            result = engine.contact_at(o.id, at)
            earned = _earned(o.id, result, channels)
        else:
            result = engine.account_at(o.id, at)
            graph = engine.graph
            earned = {
                channel
                for a in graph.bottom_up([o.id])
                for cid in engine.members_at(a, at)
                for channel in _earned(cid, engine.contact_at(cid, at), channels)
            }
        cases.append(Case(o, result, tuple(sorted(earned))))
    return Backtest(rules, tuple(cases), tuple(rejected))


def _earned(cid: str, result: ContactResult, channels: Mapping[tuple[str, str], str]) -> set[str]:
    """The channels of the events that earned a contact's result points."""
    return {
        channels.get((cid, eid), NO_CHANNEL)
        for row in result.explain()
        if row.kind == "event" and row.points > 0
        for eid in row.events
    }
