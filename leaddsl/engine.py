"""Engine: contacts, accounts and events loaded once, results computed when asked and kept.

The engine holds the records, the account graph and the results it has computed. Loading more
events forgets only the results they change: the contact's, and its account's up the hierarchy
(every result, when the evaluation time moves with the latest event). Everything else is kept,
so asking for one account after one new event recomputes that account chain and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from .accounts import AccountResult
from .errors import LeadDSLError, RecordError
from .graph import AccountGraph
from .records import Rejected, check_contact, check_event, parse_time, read_ndjson, to_datetime
from .results import ContactResult
from .ruleset import Ruleset

__all__ = ["Engine", "LoadReport", "Records"]

Records = Iterable[Mapping[str, Any]] | str | Path
ParsedEvent = tuple[float, str, str, str | None, str | None]


@attrs.frozen
class LoadReport:
    """What one ``Engine.load`` took in, and every record it set aside or could not place."""

    contacts: int
    accounts: int
    events: int
    duplicates: int  # events whose id this contact already had: counted once
    rejected: tuple[Rejected, ...]
    orphans: tuple[str, ...]  # contacts without an account after this load (all of them)


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


def _label_filter(
    where: Callable[[Any], bool] | Mapping[str, str] | None,
) -> Callable[[Any], bool]:
    if where is None:
        return lambda r: True
    if callable(where):
        return where
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

    def __init__(self, rules: Ruleset | str, *, as_of: object = None) -> None:
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
        self._seen: set[tuple[str, str]] = set()  # (contact, event id): an id counts once
        self._latest: float | None = None
        self._fixed = None if as_of is None else parse_time(as_of, source="as_of", field="as_of")
        self._contact_results: dict[str, ContactResult] = {}
        self._account_results: dict[str, AccountResult] = {}
        self._rejected: list[Rejected] = []
        self.events = 0  # events taken in (duplicates not counted)
        self.computed = {"contacts": 0, "accounts": 0}  # results computed so far

    # ---- loading -------------------------------------------------------------------------

    def load(
        self,
        contacts: Records = (),
        accounts: Records = (),
        events: Records = (),
        *,
        errors: str = "raise",
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

        n_accounts = self._load_accounts(accounts, rejected, reject)
        n_contacts = self._load_contacts(contacts, rejected, reject)
        n_events, duplicates = self._load_events(events, rejected, reject)
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
    ) -> int:
        plan = self.rules.plan.account
        numeric = plan.plan.numeric_attributes if plan is not None else frozenset()
        added: list[str] = []
        for source, rec in _records(data, "accounts", rejected):
            try:
                attrs_ = check_contact(rec, source, numeric, what="account")
                self.graph.add_account(attrs_["id"], attrs_, source)
            except RecordError as err:
                reject(source, err, rec)
                continue
            self._account_attrs[attrs_["id"]] = attrs_
            added.append(attrs_["id"])
        if added:
            for problem in self.graph.link_parents(added):
                reject(problem.source or "accounts", problem, None)
            # Contacts loaded earlier may name a new account or share its email domain.
            self.graph.relink()
            self._account_results.clear()
        return len(added)

    def _load_contacts(
        self,
        data: Records,
        rejected: list[Rejected] | None,
        reject: Callable[[str, RecordError, object], None],
    ) -> int:
        numeric = self.rules.plan.numeric_attributes
        added = 0
        for source, rec in _records(data, "contacts", rejected):
            try:
                attrs_ = check_contact(rec, source, numeric)
                problem = self.graph.add_contact(attrs_["id"], attrs_, source)
            except RecordError as err:
                reject(source, err, rec)
                continue
            cid = attrs_["id"]
            self._attrs[cid] = attrs_
            self._events[cid] = []
            added += 1
            if problem is not None:
                reject(source, problem, rec)  # the contact stays, as an orphan
        if added:
            self._account_results.clear()
        return added

    def _load_events(
        self,
        data: Records,
        rejected: list[Rejected] | None,
        reject: Callable[[str, RecordError, object], None],
    ) -> tuple[int, int]:
        by_contact = self._events
        seen = self._seen
        latest = self._latest
        touched: set[str] = set()
        count = duplicates = 0
        for source, rec in _records(data, "events", rejected):
            parsed = _fast_event(rec)
            if parsed is None:  # unusual or bad: the full check names the problem
                try:
                    ev = check_event(rec, source, require_contact=True)
                except RecordError as err:
                    reject(source, err, rec)
                    continue
                assert ev.contact is not None
                parsed = (ev.contact, ev.id, ev.at, ev.action, ev.object, ev.name)
            contact, eid, at, action, obj, name = parsed
            bucket = by_contact.get(contact)
            if bucket is None:
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
            if eid is None:
                eid = source  # a name for explain(); never deduplicated
            elif (contact, eid) in seen:
                duplicates += 1
                continue  # the same event delivered twice counts once
            else:
                seen.add((contact, eid))
            bucket.append((at, eid, action, obj, name))
            touched.add(contact)
            count += 1
            if latest is None or at > latest:
                latest = at
        self.events += count
        moved = latest != self._latest and self._fixed is None
        self._latest = latest
        if moved:  # the evaluation time moved: every score may have decayed
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
        return self._fixed if self._fixed is not None else self._latest

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
            result = self.rules.score_parsed(attrs_, self._events[cid], self._as_of())
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

    def _score_accounts(self, order: Iterable[str]) -> None:
        """Score accounts given subsidiaries first; each one's subsidiaries must be scored."""
        rules = self._account_rules()
        graph, done, as_of = self.graph, self._account_results, self._as_of()
        contact = self.contact
        for a in order:
            members = [contact(c) for c in graph.members_unsorted(a)]
            children = [done[c] for c in graph.children(a)]
            done[a] = rules.score_account(
                self._account_attrs[a], members, children, as_of, graph.parent(a)
            )
            self.computed["accounts"] += 1

    def _account_rules(self) -> Any:
        if self.rules.accounts is None:
            raise LeadDSLError(
                "this script has no account block, so accounts have no scores; "
                "add 'account:' with the account rules"
            )
        return self.rules.accounts

    def contacts(self) -> list[ContactResult]:
        """Every contact's result, in load order."""
        return [self.contact(cid) for cid in self._attrs]

    def accounts(self) -> list[AccountResult]:
        """Every account's result, in load order (subsidiaries are computed first as needed)."""
        self._account_rules()
        done = self._account_results
        if len(done) < len(self._account_attrs):
            self._score_accounts(a for a in self.graph.bottom_up() if a not in done)
        return [done[aid] for aid in self._account_attrs]

    def top_accounts(
        self,
        n: int = 10,
        by: str = "score",
        where: Callable[[AccountResult], bool] | Mapping[str, str] | None = None,
    ) -> list[AccountResult]:
        """The ``n`` best accounts by total (``by="score"``) or by one model; ties by id.

        ``where`` is a predicate on results, or labels to match: ``{"tier": "strategic"}``.
        """
        return _top(self.accounts(), n, by, _label_filter(where))

    def top_contacts(
        self,
        n: int = 10,
        by: str = "score",
        where: Callable[[ContactResult], bool] | Mapping[str, str] | None = None,
    ) -> list[ContactResult]:
        """The ``n`` best contacts by total or by one model; ties by id."""
        return _top(self.contacts(), n, by, _label_filter(where))


def _top(rows: list[Any], n: int, by: str, keep: Callable[[Any], bool]) -> list[Any]:
    def key(r: Any) -> tuple[float, str]:
        if by in ("score", "total"):
            return (-r.total, r.id)
        if by not in r.scores:
            raise LeadDSLError(f"unknown model {by!r}; models: {', '.join(r.scores)}")
        return (-r.scores[by], r.id)

    return sorted((r for r in rows if keep(r)), key=key)[:n]

