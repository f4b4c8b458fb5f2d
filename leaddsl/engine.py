"""Engine: contacts, accounts and events loaded once, results computed when asked and kept.

The engine holds the records, the account graph and the results it has computed. Loading more
events forgets only the results they change: the contact's, and its account's up the hierarchy
(every result, when the evaluation time moves with the latest event). Everything else is kept,
so asking for one account after one new event recomputes that account chain and nothing else.
"""

from __future__ import annotations

import gc
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from .accounts import AccountResult
from .columns import BadLine, Event, Key, chunks, plain_columns, share_key
from .columns import Sourced as _Sourced
from .errors import GraphError, LeadDSLError, RecordError
from .graph import AccountGraph
from .live import ContactState, LiveRules
from .records import (
    MAX_TIME,
    MIN_TIME,
    Rejected,
    check_contact,
    check_event,
    parse_time,
    read_ndjson,
    to_datetime,
)
from .results import ContactResult
from .ruleset import Ruleset
from .store import Store, rules_version
from .triggers import Callback, Snapshot, Subscriptions, Transition, changes, snapshot

__all__ = ["Engine", "LoadReport", "IngestReport", "Records", "Progress"]

Records = Iterable[Mapping[str, Any]] | str | Path
ParsedEvent = Event  # (at, id, key): see leaddsl.columns
Adjustment = tuple[float, str, str, float, str]  # (time, id, model, points, reason)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Bulk work with Python's cycle collector paused.

    Records, states and results form no reference cycles, so reference counting frees them all
    the same; but with millions of live records each collector pass walks them all, which made
    scoring up to twice as slow as the work itself. (Nested uses keep it paused.)
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:  # (an application that froze objects keeps them frozen)
            # Count what the work allocated as old: otherwise the next collection walks every
            # new object only to promote it (0.3-0.8 s after a million events). Freezing and
            # unfreezing moves all tracked objects to the oldest generation in constant time;
            # full collections still see them.
            gc.freeze()
            gc.unfreeze()
        gc.enable()


@attrs.frozen
class LoadReport:
    """What one ``Engine.load`` took in, and every record it set aside or could not place."""

    contacts: int
    accounts: int
    events: int
    duplicates: int  # events whose id this contact already had: counted once
    rejected: tuple[Rejected, ...]
    orphans: tuple[str, ...]  # contacts without an account after this load (all of them)


@attrs.frozen
class IngestReport:
    """What ``Engine.ingest_many`` took in, set aside, and the transitions it caused."""

    events: int
    duplicates: int
    rejected: tuple[Rejected, ...]
    transitions: tuple[Transition, ...]


Progress = Callable[[str, int], object]  # (what, how many so far), called now and then


def _records(
    data: Records, name: str, rejected: list[Rejected] | None, progress: Progress | None = None
) -> Iterator[tuple[str, Any]]:
    """``(source, record)`` pairs of records, an NDJSON path or sourced pairs. (Events in bulk
    go through ``columns.chunks`` instead, which names a record only when it must.)"""
    if progress is not None:
        for i, item in enumerate(_records(data, name, rejected), 1):
            if i % 20_000 == 0:
                progress(f"{name} read", i)
            yield item
        return
    if isinstance(data, _Sourced):
        yield from data
    elif isinstance(data, (str, Path)):
        try:
            yield from read_ndjson(data, rejected)
        except OSError as exc:
            raise LeadDSLError(f"cannot read {name} file {str(data)!r}: {exc.strerror}") from None
    else:
        if not isinstance(data, Iterable) or isinstance(data, (Mapping, bytes)):
            raise LeadDSLError(
                f"{name} must be records (a list of mappings) or the path of an NDJSON file, "
                f"got {type(data).__name__}"
            )
        for i, rec in enumerate(data):
            yield f"{name}[{i}]", rec


_fromiso = datetime.fromisoformat
_UTC = UTC


def _fast_event(rec: Any) -> tuple[str, str | None, float, str, str | None, str | None] | None:
    """The fields of a plainly well-formed event, or None to let check_event judge it."""
    # The common case costs a few type checks; anything else takes the validating path,
    # which gives the same values or the error naming the field. (columns.plain_columns
    # makes the same checks a chunk at a time.)
    if type(rec) is not dict:
        return None
    action, at, contact = rec.get("action"), rec.get("at"), rec.get("contact")
    eid, obj, name = rec.get("id"), rec.get("object"), rec.get("name")
    channel = rec.get("channel")
    if not (
        type(action) is str
        and action
        and type(at) is str
        and type(contact) is str
        and (eid is None or type(eid) is str)
        and (obj is None or type(obj) is str)
        and (name is None or type(name) is str)
        and (channel is None or type(channel) is str)
    ):
        return None
    try:
        dt = _fromiso(at)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_UTC)
    try:
        at = dt.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
    if not MIN_TIME <= at <= MAX_TIME:
        return None  # the full check names the problem
    return contact, eid, at, action, obj, name


class SeenIds:
    """The (contact, event id) pairs taken in: an id counts once per contact.

    Ids are nearly always unique over all contacts, so a set of ids answers "new" for almost
    every event with no tuple per event. At the first id seen again, the pairs are made from
    the contacts' events (once), and kept from then on: a resend is then told from another
    contact's event with the same id in one lookup. Names given to events that came without
    an id are not ids, and never count as one.
    """

    __slots__ = ("ids", "events", "pairs", "kept", "unnamed")

    def __init__(self, events: dict[str, list[ParsedEvent]]) -> None:
        self.ids: set[str] = set()
        self.events = events  # the engine's events by contact
        self.pairs: set[tuple[str, str]] | None = None
        self.kept: set[tuple[str, str]] = set()  # ids a store kept without their events
        self.unnamed: set[tuple[str, str]] = set()  # (contact, name) of events without ids

    def add(self, cid: str, eid: str, *, kept: bool = True) -> None:
        """Take in a pair (its event goes to the contact's events, unless ``kept`` is False)."""
        self.ids.add(eid)
        if not kept:
            self.kept.add((cid, eid))
        if self.pairs is not None:
            self.pairs.add((cid, eid))

    def add_new(self, contacts: list[str], ids: list[str]) -> bool:
        """Take in a chunk's ids, the i-th of the i-th contact, when every one is new and none
        repeats; else change nothing and say so (the chunk then goes record by record)."""
        known = self.ids
        if not known.isdisjoint(ids):
            return False
        before = len(known)
        known.update(ids)
        if len(known) - before != len(ids):  # an id repeats within the chunk
            known.difference_update(ids)  # none of them was there before
            return False
        if self.pairs is not None:
            self.pairs.update(zip(contacts, ids, strict=True))
        return True

    def name(self, cid: str, name: str) -> None:
        """Remember the name given to an event that came without an id."""
        self.unnamed.add((cid, name))

    def __contains__(self, pair: tuple[str, str]) -> bool:
        if pair[1] not in self.ids:
            return False
        if self.pairs is None:
            made = {(cid, e[1]) for cid, log in self.events.items() for e in log}
            self.pairs = (made - self.unnamed) | self.kept
        return pair in self.pairs


def _label_filter(
    where: Callable[[Any], bool] | Mapping[str, str] | None,
) -> Callable[[Any], bool]:
    if where is None:
        return lambda r: True
    if callable(where):
        return where
    if not isinstance(where, Mapping):
        raise LeadDSLError(
            f"where takes a function of a result or labels to match, got {type(where).__name__}"
        )
    wanted = {k: str(v).casefold() for k, v in where.items()}
    return lambda r: all(
        str(r.labels.get(k, "")).casefold() == v for k, v in wanted.items()
    )


class Engine:
    """A rule script with its data: load records, then ask for contacts and accounts.

    Example:
        >>> engine = Engine(compile("when visited page any: +5\\naccount:\\n"
        ...                         "    score engagement = sum of contacts by score"))
        >>> report = engine.load(
        ...     accounts=[{"id": "acme"}],
        ...     contacts=[{"id": "c1", "account": "acme"}, {"id": "c2", "account": "acme"}],
        ...     events=[{"contact": "c1", "action": "visited", "object": "page",
        ...              "at": "2026-03-01T00:00:00Z"}])
        >>> engine.account("acme").total
        5.0
    """

    def __init__(
        self,
        rules: Ruleset | str,
        *,
        as_of: object = None,
        auto_contacts: bool = False,
        store: str | Path | None = None,
        keep_events: bool = True,
        transitions: bool = True,
    ) -> None:
        if isinstance(rules, str):
            from .script import compile as compile_script

            rules = compile_script(rules)
        if not isinstance(rules, Ruleset):
            raise LeadDSLError(f"an Engine takes a Ruleset or a script, got {type(rules).__name__}")
        self.rules = rules
        self.graph = AccountGraph()
        self._attrs: dict[str, dict[str, Any]] = {}
        self._account_attrs: dict[str, dict[str, Any]] = {}
        self._events: dict[str, list[ParsedEvent]] = {}
        self._seen = SeenIds(self._events)  # (contact, event id): an id counts once
        self._keys: dict[Key, Key] = {}  # one tuple per (action, object, name): see Event
        self._latest: float | None = None
        self._fixed = None if as_of is None else parse_time(as_of, source="as_of", field="as_of")
        self._contact_results: dict[str, ContactResult] = {}
        self._account_results: dict[str, AccountResult] = {}
        self._rejected: list[Rejected] = []
        self.events = 0  # events taken in (duplicates not counted)
        self.computed = {"contacts": 0, "accounts": 0}  # results computed so far
        # Live scoring (ingest): per-contact summaries, manual adjustments, triggers.
        self.auto_contacts = auto_contacts  # ingest creates unknown contacts instead of failing
        self._live: LiveRules | None = None
        self._states: dict[str, ContactState] = {}
        # Contacts of a live engine whose last result was scored from their events: asked
        # again, they get their live summary (see contact()).
        self._from_log: set[str] = set()
        self._adjust: dict[str, list[Adjustment]] = {}
        self._account_adjust: dict[str, list[Adjustment]] = {}
        self._known: dict[tuple[str, str], Snapshot] = {}  # what triggers last saw
        self._subs = Subscriptions()
        # Working out transitions costs a re-evaluation of the contact and of its accounts per
        # event; a host that needs no triggers turns it off (transitions=False) for speed.
        self._transitions = transitions
        self._clock: float | None = None  # advance() moves the evaluation time to here
        self._unnamed = 0  # events ingested without an id
        self._log_complete = True  # False when a store gave back event ids without events
        self.version = rules_version(rules.source)
        self.keep_events = keep_events
        self._store: Store | None = None
        if store is not None:
            self._open(Store(store), keep_events)

    # ---- loading -------------------------------------------------------------------------

    def load(
        self,
        contacts: Records = (),
        accounts: Records = (),
        events: Records = (),
        *,
        errors: str = "raise",
        progress: Progress | None = None,
    ) -> LoadReport:
        """Take in records: iterables of mappings, or paths of NDJSON files.

        Accounts are read first, then contacts (linked to their accounts, or matched by email
        domain), then events. Load accounts before, or with, the contacts that name them.

        Args:
            errors: ``"raise"`` stops at the first bad record with a RecordError naming it
                (records before it stay loaded); ``"collect"`` sets each bad record aside in
                the report, keeps a contact whose account is unknown as an orphan, and goes on.

        Raises:
            RecordError: a bad record, with ``errors="raise"``.
            GraphError: accounts whose parents form a cycle (always raised).
        """
        if errors not in ("raise", "collect"):
            raise LeadDSLError(f"errors must be 'raise' or 'collect', not {errors!r}")
        rejected: list[Rejected] | None = [] if errors == "collect" else None

        def reject(source: str, err: RecordError, record: object) -> None:
            if rejected is None:
                raise err
            rejected.append(Rejected(source, str(err), record))

        with self._tx(), paused_gc():
            n_accounts = self._load_accounts(accounts, rejected, reject, progress)
            n_contacts = self._load_contacts(contacts, rejected, reject, progress)
            n_events, duplicates = self._load_events(events, rejected, reject, progress)
        self._rejected += rejected or ()
        return LoadReport(
            n_contacts,
            n_accounts,
            n_events,
            duplicates,
            tuple(rejected or ()),
            tuple(self.graph.orphans()),
        )

    def _load_accounts(
        self,
        data: Records,
        rejected: list[Rejected] | None,
        reject: Callable[[str, RecordError, object], None],
        progress: Progress | None = None,
    ) -> int:
        plan = self.rules.plan.account
        numeric = plan.plan.numeric_attributes if plan is not None else frozenset()
        added: list[str] = []
        problems: list[RecordError] = []
        try:
            for source, rec in _records(data, "accounts", rejected, progress):
                try:
                    attrs_ = check_contact(rec, source, numeric, what="account")
                    self.graph.add_account(attrs_["id"], attrs_, source)
                except RecordError as err:
                    reject(source, err, rec)
                    continue
                self._account_attrs[attrs_["id"]] = attrs_
                if self._store is not None:
                    self._store.add_record("accounts", attrs_["id"], rec, source)
                added.append(attrs_["id"])
        finally:  # the accounts taken in are linked even when a bad record stops the load
            if added:
                try:
                    problems = self.graph.link_parents(added)
                except GraphError:
                    for aid in added:  # the cycle's batch is refused as a whole
                        self.graph.remove_account(aid)
                        del self._account_attrs[aid]
                    raise
                # Contacts loaded earlier may name a new account or share its email domain.
                self.graph.relink()
                self._account_results.clear()
        for problem in problems:
            if rejected is None:  # raise mode: the account with the unknown parent is refused
                aid = str(problem.record_id)
                self.graph.remove_account(aid)
                del self._account_attrs[aid]
                added.remove(aid)
            reject(problem.source or "accounts", problem, None)
        return len(added)

    def _load_contacts(
        self,
        data: Records,
        rejected: list[Rejected] | None,
        reject: Callable[[str, RecordError, object], None],
        progress: Progress | None = None,
    ) -> int:
        numeric = self.rules.plan.numeric_attributes
        added = 0
        for source, rec in _records(data, "contacts", rejected, progress):
            try:
                attrs_ = check_contact(rec, source, numeric)
                problem = self.graph.add_contact(attrs_["id"], attrs_, source)
            except RecordError as err:
                reject(source, err, rec)
                continue
            cid = attrs_["id"]
            if problem is not None and rejected is None:
                self.graph.remove_contact(cid)  # raise mode: refused, so it can be loaded again
                reject(source, problem, rec)
            self._attrs[cid] = attrs_
            if self._store is not None:
                self._store.add_record("contacts", cid, rec, source)
            self._events[cid] = []
            if self._contact_results or self._account_results:
                self._forget(cid)  # its accounts have one more member now; other accounts stay
            added += 1
            if problem is not None:
                reject(source, problem, rec)  # the contact stays, as an orphan
        return added

    def _load_events(
        self,
        data: Records,
        rejected: list[Rejected] | None,
        reject: Callable[[str, RecordError, object], None],
        progress: Progress | None = None,
        ingest: bool = False,
    ) -> tuple[int, int]:
        """Take in events. ``ingest``: as ``ingest_many`` does without triggers — the engine
        becomes live (each contact's summary is made when first needed, see contact()), unknown
        contacts are created with ``auto_contacts``. Summaries made already take the events."""
        by_contact = self._events
        seen = self._seen
        touched: set[str] = set()
        store = self._store
        before = self._as_of()
        latest = self._latest
        # Only results already computed need forgetting; a first bulk load has none.
        track = bool(self._contact_results or self._account_results or store is not None)
        count = duplicates = read = 0
        try:
            for chunk in chunks(data, "events", typed=store is None):
                read += chunk.size
                if progress is not None:
                    progress("events read", read)
                plain = None
                if store is None:  # plain chunks are checked by columns
                    plain = plain_columns(chunk, by_contact, self._keys)
                    if plain is not None and not seen.add_new(plain.contacts, plain.ids):
                        plain = None  # an id seen before: the record path counts it
                if plain is not None:
                    # Each event onto its contact's log, in C: a chunk touches most contacts.
                    deque(map(list.append, plain.logs, plain.events), 0)
                    states = self._states
                    chunk_contacts = plain.touched if states or track else set()
                    live = states.keys() & chunk_contacts if states else ()
                    if live:
                        add = self._live_rules().add
                        for contact, event in zip(plain.contacts, plain.events, strict=True):
                            if contact in live:
                                add(states[contact], *event)
                    if track:
                        touched |= chunk_contacts
                    count += plain.count
                    if latest is None or plain.latest > latest:
                        latest = plain.latest
                    continue
                chunk = chunk.as_dicts()
                for i, rec in enumerate(chunk.records):
                    if type(rec) is BadLine:
                        reject(chunk.name_of(i), rec.error, rec.text)
                        continue
                    parsed = _fast_event(rec)
                    if parsed is None:  # unusual or bad: the full check names the problem
                        source = chunk.name_of(i)
                        try:
                            ev = check_event(rec, source, require_contact=True)
                        except RecordError as err:
                            reject(source, err, rec)
                            continue
                        assert ev.contact is not None
                        parsed = (ev.contact, ev.id, ev.at, ev.action, ev.object, ev.name)
                    contact, eid, t, action, obj, name = parsed
                    key = share_key(self._keys, (action, obj, name))
                    if contact not in by_contact:
                        if ingest and self.auto_contacts:
                            self.load(contacts=[{"id": contact}])
                        else:
                            source = chunk.name_of(i)
                            reject(
                                source,
                                RecordError(
                                    f"unknown contact {contact!r}",
                                    source=source,
                                    record_id=eid,
                                    field="contact",
                                ),
                                rec,
                            )
                            continue
                    stored_id = eid
                    if eid is None:
                        if ingest:
                            self._unnamed += 1
                            eid = f"{chunk.name_of(i)}#{self._unnamed}"
                        else:
                            eid = chunk.name_of(i)  # a name for explain(); never deduplicated
                        seen.name(contact, eid)
                    elif (contact, eid) in seen:
                        duplicates += 1
                        continue  # the same event delivered twice counts once
                    else:
                        seen.add(contact, eid)
                    state = self._states.get(contact)
                    by_contact[contact].append((t, eid, key))
                    if state is not None:
                        self._live_rules().add(state, t, eid, key)
                    if track:
                        touched.add(contact)
                        if store is not None:
                            store.add_event(
                                contact, stored_id, t, action, obj, name, self.keep_events
                            )
                    count += 1
                    if latest is None or t > latest:
                        latest = t
        finally:  # what came before a bad record stays taken in, as-of time included
            if ingest and count:
                # The engine is live from now on; each contact's summary is made from its
                # whole log when first needed (see contact()), not here.
                self._live_rules()
            self.events += count
            self._latest = latest
            if store is not None:
                for cid in touched:
                    # Without the events kept, their summaries must be; with them, a summary
                    # saved earlier must not go stale.
                    if not self.keep_events or cid in self._states:
                        store.save_state(cid, self._state(cid).to_data(), self.version)
            if self._as_of() != before:  # the evaluation time moved: every score may decay
                self._contact_results.clear()
                self._account_results.clear()
            else:
                for cid in touched:
                    self._forget(cid)
        return count, duplicates

    def _forget(self, cid: str) -> None:
        """Drop a contact's result and those of the accounts above it."""
        self._contact_results.pop(cid, None)
        for aid in self.graph.path(cid):
            self._account_results.pop(aid, None)

    # ---- results ---------------------------------------------------------------------------

    @property
    def as_of(self) -> datetime | None:
        """The evaluation time: the one given, else the latest event loaded."""
        return to_datetime(self._as_of())

    def _as_of(self) -> float | None:
        if self._fixed is not None:
            return self._fixed
        if self._clock is not None and (self._latest is None or self._clock > self._latest):
            return self._clock
        return self._latest

    @property
    def rejected(self) -> tuple[Rejected, ...]:
        """Every record set aside by the loads so far."""
        return tuple(self._rejected)

    def orphans(self) -> list[str]:
        """Contacts without an account: scored as contacts, counted in no account."""
        return self.graph.orphans()

    def contact(self, cid: str) -> ContactResult:
        """A contact's result (computed on first request, then kept until its data changes)."""
        result = self._contact_results.get(cid)
        if result is None:
            attrs_ = self._attrs.get(cid)
            if attrs_ is None:
                raise LeadDSLError(f"unknown contact {cid!r}")
            as_of = self._as_of()
            state = self._states.get(cid)
            if state is None and self._live is not None and (
                    cid in self._from_log or not self._log_complete):
                # Asked again (the time or its data moved on): live from now on, so later
                # results cost O(rules). A first answer is scored from the events, as in a
                # batch: a bulk ingest then read once never pays for summaries. (A store
                # that keeps only event ids has no events to score: summaries only.)
                state = self._state(cid)
                self._from_log.discard(cid)
            if state is not None and (as_of is None or state.top is None or as_of >= state.top):
                assert self._live is not None
                result = self._live.result(
                    attrs_, state, as_of, self._adjust.get(cid), replay=self._replayer(cid)
                )
            else:
                result = self.rules.score_parsed(
                    attrs_, self._events[cid], as_of, self._adjust.get(cid)
                )
                if self._live is not None:
                    self._from_log.add(cid)
            self._contact_results[cid] = result
            self.computed["contacts"] += 1
        return result

    def account(self, aid: str) -> AccountResult:
        """An account's result, its subsidiaries scored first when they must roll up into it."""
        result = self._account_results.get(aid)
        if result is not None:
            return result
        self._account_rules()
        if aid not in self._account_attrs:
            raise LeadDSLError(f"unknown account {aid!r}")
        done = self._account_results
        self._score_accounts(a for a in self.graph.bottom_up([aid]) if a not in done)
        return done[aid]

    def contact_at(self, cid: str, at: object) -> ContactResult:
        """A contact's result at another time, as if nothing after ``at`` had happened yet.

        Computed afresh and not kept: backtests ask for each contact as of its own outcome.
        Events later than ``at`` are ignored, so a result never peeks at the future.
        """
        attrs_ = self._attrs.get(cid)
        if attrs_ is None:
            raise LeadDSLError(f"unknown contact {cid!r}")
        when = parse_time(at, source="at", field="at")
        return self.rules.score_parsed(attrs_, self._events[cid], when, self._adjust.get(cid))

    def account_at(self, aid: str, at: object) -> AccountResult:
        """An account's result at another time, its contacts and subsidiaries as of then too.

        A contact whose every event is later than ``at`` was not known then and is left out
        of the committee (customers add people after signing: counting them would leak the
        future into ``count of contacts``); a contact with no events stays, as nothing says
        when it came.
        """
        rules = self._account_rules()
        if aid not in self._account_attrs:
            raise LeadDSLError(f"unknown account {aid!r}")
        when = parse_time(at, source="at", field="at")
        graph = self.graph
        done: dict[str, AccountResult] = {}
        for a in graph.bottom_up([aid]):
            done[a] = rules.score_account(
                self._account_attrs[a],
                [self.contact_at(c, when) for c in self.members_at(a, when)],
                [done[c] for c in graph.children(a)],
                when,
                graph.parent(a),
                [adj for adj in self._account_adjust.get(a, ()) if adj[0] <= when],
            )
        return done[aid]

    def members_at(self, aid: str, when: float) -> list[str]:
        """The account's own contacts known at ``when`` (epoch seconds): see ``account_at``."""
        events = self._events
        return [
            c
            for c in self.graph.members_unsorted(aid)
            if not events.get(c) or min(e[0] for e in events[c]) <= when
        ]

    def _score_accounts(self, order: Iterable[str]) -> None:
        """Score accounts given subsidiaries first; each one's subsidiaries must be scored."""
        rules = self._account_rules()
        graph, done, as_of = self.graph, self._account_results, self._as_of()
        contact = self.contact
        for a in order:
            members = [contact(c) for c in graph.members_unsorted(a)]
            children = [done[c] for c in graph.children(a)]
            done[a] = rules.score_account(
                self._account_attrs[a],
                members,
                children,
                as_of,
                graph.parent(a),
                self._account_adjust.get(a, ()),
            )
            self.computed["accounts"] += 1

    # ---- the durable store ----------------------------------------------------------------

    def _open(self, store: Store, keep_events: bool) -> None:
        """Take in what the store holds; re-derive states if the rules changed."""
        kept = store.get("keep_events")
        if kept is not None and (kept == "1") != keep_events:
            raise LeadDSLError(
                f"store {store.path!r} was made with keep_events={kept == '1'}; "
                "open it with the same setting"
            )
        old = store.get("rules")
        changed = old is not None and old != self.version
        if changed and not keep_events:
            raise LeadDSLError(
                f"store {store.path!r} was built by other rules (version {old}) and keeps no "
                "events, so its states cannot be re-derived: open it with those rules, or "
                "start a new store with keep_events=True"
            )
        self.load(
            # Stored records keep the names of where they first came from.
            accounts=_Sourced((s, r) for _, r, s in store.records("accounts")),  # type: ignore[arg-type]
            contacts=_Sourced((s, r) for _, r, s in store.records("contacts")),  # type: ignore[arg-type]
            errors="collect",
        )
        for seq, cid, stored_id, at, action, obj, name in store.events():
            if stored_id is None:
                eid = f"stored#{seq}"  # an event that came without an id: never deduplicated
                self._seen.name(cid, eid)
            else:
                eid = stored_id
                # The id counts once even when its event is not in memory (kept=False).
                self._seen.add(cid, eid, kept=at is not None and cid in self._events)
            if at is None:
                self._log_complete = False  # only the id was kept
                continue
            if cid not in self._events:
                continue
            self._events[cid].append((at, eid, share_key(self._keys, (str(action), obj, name))))
            self.events += 1
            if self._latest is None or at > self._latest:
                self._latest = at
        for subject, who, entry in store.adjustments():
            log = self._adjust if subject == "contact" else self._account_adjust
            log.setdefault(who, []).append(entry)
            if self._latest is None or entry[0] > self._latest:
                self._latest = entry[0]
        clock = store.get("clock")
        self._clock = None if clock is None else float(clock)
        if changed:
            store.clear_derived()  # states come back from the events as they are needed
        else:
            self._live_rules()
            for cid, data in store.states().items():
                if cid in self._attrs:
                    state = self._states[cid] = ContactState.from_data(data)
                    if state.top is not None and (self._latest is None or state.top > self._latest):
                        self._latest = state.top  # a store without events keeps their times here
            for (subject, ident), (q, d, labels) in store.known().items():
                self._known[(subject, ident)] = (q, d, tuple((k, v) for k, v in labels))
        with store.transaction():
            store.put("rules", self.version)
            store.put("rules_source", self.rules.source)
            store.put("keep_events", "1" if keep_events else "0")
        self._contact_results.clear()
        self._account_results.clear()
        self._store = store

    @property
    def store_path(self) -> str | None:
        return None if self._store is None else self._store.path

    def transitions(self, after: int = 0) -> list[tuple[int, Transition]]:
        """The transitions the store recorded, with their sequence numbers, after ``after``.

        A host that must act on every transition exactly once reads them from here (an
        outbox): callbacks run after each commit, so a crash between the two skips a call.
        """
        if self._store is None:
            raise LeadDSLError("transitions are recorded only by an engine with a store")
        out = []
        for seq, data, _rules in self._store.transitions(after):
            when = data.pop("as_of")
            data["as_of"] = None if when is None else datetime.fromisoformat(when)
            out.append((seq, Transition(**data)))
        return out

    def close(self) -> None:
        """Close the store (an engine without a store has nothing to close)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    # ---- live scoring -------------------------------------------------------------------

    def _live_rules(self) -> LiveRules:
        if self._live is None:
            self._live = LiveRules(self.rules)
        return self._live

    def _replayer(self, cid: str) -> Callable[[], ContactResult]:
        """A replay of the contact's events as they are now, for explain()."""
        # The log only grows: the replay takes its first n events (no copy per result).
        attrs_, log = self._attrs[cid], self._events[cid]
        n = len(log)
        adjustments, as_of = list(self._adjust.get(cid, ())), self._as_of()
        if not self._log_complete:

            def refuse() -> ContactResult:
                raise LeadDSLError(
                    "explain() replays a contact's events, and this engine's store keeps only "
                    "their ids (keep_events=False)"
                )

            return refuse
        return lambda: self.rules.score_parsed(attrs_, log[:n], as_of, adjustments)

    def _state(self, cid: str) -> ContactState:
        state = self._states.get(cid)
        if state is None:  # built once from the log, then kept up to date event by event
            state = self._states[cid] = self._live_rules().build(self._events[cid])
        return state

    def _chain(self, cid: str) -> list[tuple[str, str]]:
        """What an event of this contact may change that triggers watch: the contact and its
        accounts (nothing with ``transitions=False``)."""
        if not self._transitions:
            return []
        keys = [("contact", cid)]
        if self.rules.accounts is not None:
            keys += [("account", a) for a in self.graph.path(cid)]
        return keys

    def _snapshot(self, key: tuple[str, str]) -> Snapshot:
        known = self._known.get(key)
        if known is None:
            kind, ident = key
            known = snapshot(self.contact(ident) if kind == "contact" else self.account(ident))
        return known

    def _settle(self, keys: list[tuple[str, str]], before: dict[tuple[str, str], Snapshot],
                cause: str | None) -> list[Transition]:
        """Record the new results of ``keys`` and the transitions from ``before``."""
        out: list[Transition] = []
        as_of = self.as_of
        store = self._store
        for key in keys:
            kind, ident = key
            result = self.contact(ident) if kind == "contact" else self.account(ident)
            now = snapshot(result)
            self._known[key] = now
            if store is not None:
                store.save_known(kind, ident, now, result.total, self.version)
            out.extend(changes(kind, ident, before[key], now, as_of, cause))
        if store is not None:
            for t in out:
                store.add_transition(t.to_dict(), self.version)
        return out

    def _tx(self) -> Any:
        """The store's transaction (nothing without a store). A bad record still commits what
        was taken in before it, as memory keeps it too; anything else rolls back."""
        return nullcontext() if self._store is None else self._store.transaction()

    def ingest(self, event: Mapping[str, Any], *, source: str = "event") -> tuple[Transition, ...]:
        """Score one event now: its contact and that contact's accounts, and nothing else.

        Returns the transitions it caused (also passed to the callbacks registered with
        :meth:`on`; none with ``transitions=False``, which skips that work for speed). An event
        whose id this contact already had changes nothing. An event
        without an id cannot be recognised when it comes again: give events ids.

        Raises:
            RecordError: the event is malformed, or its contact is unknown (unless the engine
                was made with ``auto_contacts=True``), naming ``source`` and the field.
        """
        parsed = _fast_event(event)
        if parsed is None:
            ev = check_event(event, source, require_contact=True)
            assert ev.contact is not None
            parsed = (ev.contact, ev.id, ev.at, ev.action, ev.object, ev.name)
        cid, eid, at, action, obj, name = parsed
        key = share_key(self._keys, (action, obj, name))
        if cid not in self._attrs:
            if not self.auto_contacts:
                raise RecordError(
                    f"unknown contact {cid!r}", source=source, record_id=eid, field="contact"
                )
            self.load(contacts=[{"id": cid}])
        stored_id = eid
        if eid is None:
            self._unnamed += 1
            eid = f"{source}#{self._unnamed}"
            self._seen.name(cid, eid)
        elif (cid, eid) in self._seen:
            return ()
        keys = self._chain(cid)
        before = {k: self._snapshot(k) for k in keys}
        state = self._state(cid)  # from the log as it was: the new event is not in it yet
        with self._tx():
            self._seen.add(cid, eid)
            self._events[cid].append((at, eid, key))
            self._live_rules().add(state, at, eid, key)
            self.events += 1
            self._moved_to(at)
            self._forget(cid)
            if self._store is not None:
                self._store.add_event(cid, stored_id, at, action, obj, name, self.keep_events)
                self._store.save_state(cid, state.to_data(), self.version)
            fired = self._settle(keys, before, eid)
        self._subs.fire(fired)  # after the commit: a crash never fires a transition twice
        return tuple(fired)

    def _moved_to(self, at: float) -> None:
        if self._latest is None or at > self._latest:
            old = self._as_of()
            self._latest = at
            if self._as_of() != old:  # time moved for everyone: every decayed score changed
                self._contact_results.clear()
                self._account_results.clear()

    def ingest_many(
        self, events: Records, *, errors: str = "raise"
    ) -> IngestReport:
        """Ingest events one by one (mappings or an NDJSON path).

        With ``errors="raise"`` the first bad event stops the run with its RecordError (the
        events before it stay ingested); with ``"collect"`` every bad event is set aside in the
        report, with its reason, and the others are ingested.
        """
        if errors not in ("raise", "collect"):
            raise LeadDSLError(f"errors must be 'raise' or 'collect', not {errors!r}")
        rejected: list[Rejected] | None = [] if errors == "collect" else None
        fired: list[Transition] = []
        with paused_gc():
            if self._transitions or self._store is not None:
                count, duplicates = self._ingest_all(events, rejected, fired)
            else:  # nothing to work out per event, nothing to commit per event: in bulk

                def reject(source: str, err: RecordError, record: object) -> None:
                    if rejected is None:
                        raise err
                    rejected.append(Rejected(source, str(err), record))

                count, duplicates = self._load_events(events, rejected, reject, ingest=True)
        self._rejected += rejected or ()
        return IngestReport(count, duplicates, tuple(rejected or ()), tuple(fired))

    def _ingest_all(
        self, events: Records, rejected: list[Rejected] | None, fired: list[Transition]
    ) -> tuple[int, int]:
        count = duplicates = 0
        for source, rec in _records(events, "events", rejected):
            before = self.events
            try:
                fired.extend(self.ingest(rec, source=source))
            except RecordError as err:
                if rejected is None:
                    raise
                rejected.append(Rejected(source, str(err), rec))
                continue
            if self.events > before:
                count += 1
            else:
                duplicates += 1
        return count, duplicates

    def on(
        self,
        kind: str,
        fn: Callback,
        *,
        label: str | None = None,
        subject: str | None = None,
    ) -> Callback:
        """Call ``fn(transition)`` on every ``kind`` of change: "qualified", "disqualified" or
        "label_changed" (``label=`` one ladder); ``subject=`` "contact" or "account" only.

        Returns ``fn``, so it can decorate. Callbacks run after the engine is up to date; an
        exception in one propagates to the caller of ingest and skips the callbacks after it.
        """
        ladders = {*self.rules.ladders}
        if self.rules.accounts is not None:
            ladders |= set(self.rules.accounts.ladders)
        if not self._transitions:
            raise LeadDSLError("this engine was made with transitions=False: nothing would fire")
        self._subs.add(kind, fn, label, subject, {name: None for name in sorted(ladders)})
        return fn

    def off(self, fn: Callback) -> None:
        """Stop calling ``fn``."""
        self._subs.remove(fn)

    def advance(self, to: object) -> tuple[Transition, ...]:
        """Move the evaluation time forward to ``to``: decay, windows and inactivity catch up.

        Time passing alone changes scores, but the engine notices it only here: every contact
        and account is evaluated at the new time, and the transitions this causes fire (with
        ``cause`` None). Between calls, a transition caused by time shows up with the next
        event of that contact.
        """
        when = parse_time(to, source="advance", field="to")
        current = self._as_of()
        if self._fixed is not None:
            raise LeadDSLError("this engine evaluates at a fixed as_of time; advance() moves "
                               "the time of an engine made without as_of=")
        if current is not None and when < current:
            raise LeadDSLError(f"advance() goes forward only; the engine is at {self.as_of}")
        keys = [("contact", c) for c in self._attrs] if self._transitions else []
        if self.rules.accounts is not None and self._transitions:
            keys += [("account", a) for a in self._account_attrs]
        before = {k: self._snapshot(k) for k in keys}
        with self._tx():
            self._clock = when
            self._contact_results.clear()
            self._account_results.clear()
            if self.rules.accounts is not None and keys:
                self.accounts()
            if self._store is not None:
                self._store.put("clock", repr(when))
            fired = self._settle(keys, before, None)
        self._subs.fire(fired)
        return tuple(fired)

    def adjust(
        self,
        who: str,
        points: float,
        reason: str,
        *,
        model: str | None = None,
        at: object = None,
        id: str | None = None,  # noqa: A002 - the event's id, as in records
        subject: str | None = None,
    ) -> tuple[Transition, ...]:
        """Add ``points`` by hand to a contact's or an account's ``model`` (default: the first).

        The adjustment is an event in the log, so it shows in ``explain()`` with its reason and
        the rows still add up to the total; it neither decays nor counts towards a cap. ``at``
        defaults to the engine's current time; ``subject`` ("contact" or "account") settles an
        id that names both. Returns the transitions it caused.
        """
        if subject is None:
            is_contact, is_account = who in self._attrs, who in self._account_attrs
            if is_contact and is_account:
                raise LeadDSLError(f"{who!r} is both a contact and an account; pass subject=")
            subject = "contact" if is_contact else "account" if is_account else None
        if subject == "contact" and who in self._attrs:
            models = self.rules.models
            log = self._adjust
        elif subject == "account" and who in self._account_attrs:
            models = self._account_rules().models
            log = self._account_adjust
        else:
            raise LeadDSLError(f"no contact or account {who!r}")
        model = models[0] if model is None else model
        if model not in models:
            raise LeadDSLError(f"unknown model {model!r}; the {subject} models: "
                               + ", ".join(models))
        if not isinstance(points, (int, float)) or isinstance(points, bool) or not math.isfinite(
            points
        ):
            raise LeadDSLError(f"points must be a number, got {points!r}")
        if not isinstance(reason, str) or not reason.strip():
            raise LeadDSLError("an adjustment needs a reason")
        when = self._as_of() if at is None else parse_time(at, source="adjust", field="at")
        if when is None:
            when = datetime.now(UTC).timestamp()
        entries = log.setdefault(who, [])
        eid = id if id is not None else f"adjustment#{subject}:{who}:{len(entries) + 1}"
        if any(e[1] == eid for e in entries):
            return ()  # the same adjustment twice counts once
        cid = who if subject == "contact" else None
        if cid is not None:
            keys = self._chain(cid)
        elif self._transitions:
            keys = [("account", who)] + [("account", a) for a in self.graph.ancestors(who)]
        else:
            keys = []
        before = {k: self._snapshot(k) for k in keys}
        entry = (when, eid, model, float(points), reason.strip())
        with self._tx():
            entries.append(entry)
            self._moved_to(when)
            if cid is not None:
                self._forget(cid)
            else:
                for key in keys:
                    self._account_results.pop(key[1], None)
            if self._store is not None:
                self._store.add_adjustment(subject, who, entry)
            fired = self._settle(keys, before, eid)
        self._subs.fire(fired)
        return tuple(fired)

    def _account_rules(self) -> Any:
        if self.rules.accounts is None:
            raise LeadDSLError(
                "this script has no account block, so accounts have no scores; "
                "add 'account:' with the account rules"
            )
        return self.rules.accounts

    def contact_ids(self) -> list[str]:
        """Every contact's id, in load order."""
        return list(self._attrs)

    def account_ids(self) -> list[str]:
        """Every account's id, in load order."""
        return list(self._account_attrs)

    def contacts(self) -> list[ContactResult]:
        """Every contact's result, in load order."""
        with paused_gc():
            return [self.contact(cid) for cid in self._attrs]

    def accounts(self) -> list[AccountResult]:
        """Every account's result, in load order (subsidiaries are computed first as needed)."""
        self._account_rules()
        done = self._account_results
        if len(done) < len(self._account_attrs):
            with paused_gc():
                self._score_accounts(a for a in self.graph.bottom_up() if a not in done)
        return [done[aid] for aid in self._account_attrs]

    def top_accounts(
        self,
        n: int = 10,
        by: str = "score",
        where: str | Callable[[AccountResult], bool] | Mapping[str, str] | None = None,
    ) -> list[AccountResult]:
        """The ``n`` best accounts by total (``by="score"``) or by one model; ties by id.

        ``where`` is a condition in the rule language (``'tier = "strategic"'``), a predicate
        on results, or labels to match: ``{"tier": "strategic"}``.
        """
        return top_results(self.accounts(), n, by, self._filter(where, accounts=True))

    def top_contacts(
        self,
        n: int = 10,
        by: str = "score",
        where: str | Callable[[ContactResult], bool] | Mapping[str, str] | None = None,
    ) -> list[ContactResult]:
        """The ``n`` best contacts by total or by one model; ties by id (``where`` as above)."""
        return top_results(self.contacts(), n, by, self._filter(where, accounts=False))

    def _filter(self, where: Any, accounts: bool) -> Callable[[Any], bool]:
        if isinstance(where, Mapping):
            rules = self._account_rules() if accounts else self.rules
            unknown = [k for k in where if k not in rules.ladders]
            if unknown:
                raise LeadDSLError(
                    f"no ladder {unknown[0]!r}; the ladders: {', '.join(rules.ladders) or 'none'}"
                )
        if not isinstance(where, str):
            return _label_filter(where)
        from .filters import where as compile_filter

        test = compile_filter(self.rules, where, accounts=accounts)
        if test.rules is not self.rules:
            raise LeadDSLError(
                "this filter tests events the script does not count; compile the filter first "
                "(leaddsl.filters.where) and make the engine with its .rules"
            )
        return test


def top_results(rows: list[Any], n: int, by: str, keep: Callable[[Any], bool]) -> list[Any]:
    """The ``n`` best of ``rows`` that ``keep``, by total (``score``) or one model; ties by id."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise LeadDSLError(f"n must be a whole number of 0 or more, got {n!r}")
    if rows and by not in ("score", "total") and by not in rows[0].scores:
        raise LeadDSLError(f"unknown model {by!r}; models: {', '.join(rows[0].scores)}")

    def key(r: Any) -> tuple[float, str]:
        if by in ("score", "total"):
            return (-r.total, r.id)
        return (-r.scores[by], r.id)

    return sorted((r for r in rows if keep(r)), key=key)[:n]

