"""The account graph: contacts, accounts and the parent hierarchy as a networkx DiGraph.

Nodes are ``("contact", id)`` and ``("account", id)``. A contact has at most one edge, to its
account (``kind="member"``, with the contact's committee ``role`` and ``via``: "account" when
the record named the account, "domain" when its email domain matched). An account has at most
one edge, to its parent (``kind="parent"``). Both edge kinds point up, so the ancestors of a
node are its accounts up to the top of the hierarchy.

Host applications can read ``AccountGraph.nx`` directly; the methods answer the usual questions
(members, committee, subsidiaries, path to the top) without knowing that layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import networkx as nx

from .errors import GraphError, RecordError

__all__ = ["AccountGraph", "email_domain"]

Node = tuple[str, str]


def email_domain(email: object) -> str | None:
    """The lower-cased domain of an email address, or None when there is none."""
    if not isinstance(email, str) or "@" not in email:
        return None
    domain = email.rpartition("@")[2].strip().strip(".").casefold()
    return domain or None


def _read_domains(value: object, source: str, rid: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(d, str) for d in items):
        raise RecordError(
            f"expected a domain or a list of domains, got {value!r}",
            source=source,
            record_id=rid,
            field="domains",
        )
    return tuple(d.strip().strip(".").casefold() for d in items if d.strip().strip("."))


class AccountGraph:
    """Who belongs to which account, and which account belongs to which parent."""

    def __init__(self) -> None:
        self._nx: nx.DiGraph[Node] = nx.DiGraph()
        # Contacts and their member edges wait here until the networkx graph is read: adding
        # them one call at a time costs several microseconds each (networkx clears its view
        # caches on every edge), and a load adds tens of thousands. The plain indexes below
        # answer everything leaddsl itself asks.
        self._new_nodes: list[tuple[Node, dict[str, Any]]] = []
        self._new_edges: list[tuple[Node, Node, dict[str, Any]]] = []
        self._records: dict[Node, Mapping[str, Any]] = {}
        self._domain_owner: dict[str, str] = {}  # domain -> account id
        self._sources: dict[Node, str] = {}  # where each record came from, for errors
        self._n_accounts = 0
        # Plain indexes kept beside the networkx graph: the scorer's hot path reads these.
        self._parent: dict[str, str] = {}
        self._kids: dict[str, list[str]] = {}
        self._members: dict[str, list[str]] = {}
        self._account_of: dict[str, str] = {}
        self._orphans: dict[str, None] = {}  # contacts without an account, in order
        self._pending: dict[str, str] = {}  # accounts waiting for their parent

    @property
    def nx(self) -> nx.DiGraph[Node]:
        """The networkx graph (read it; change it only through this class)."""
        if self._new_nodes or self._new_edges:
            self._nx.add_nodes_from(self._new_nodes)
            self._nx.add_edges_from(self._new_edges)
            self._new_nodes, self._new_edges = [], []
        return self._nx

    # ---- building ------------------------------------------------------------------------

    def add_account(self, aid: str, record: Mapping[str, Any], source: str) -> None:
        """Add an account; its parent link is made by :meth:`link_parents` once all are known.

        Raises RecordError for a duplicate id or a domain another account already lists.
        """
        node = ("account", aid)
        if node in self._sources:
            raise RecordError(
                f"duplicate account id (first from {self._sources[node]})",
                source=source,
                record_id=aid,
                field="id",
            )
        domains = _read_domains(record.get("domains"), source, aid)
        for d in domains:
            if d in self._domain_owner and self._domain_owner[d] != aid:
                raise RecordError(
                    f"domain {d!r} is already listed by account {self._domain_owner[d]!r}",
                    source=source,
                    record_id=aid,
                    field="domains",
                )
        self.nx.add_node(node, kind="account", record=record)
        self._records[node] = record
        self._sources[node] = source
        self._n_accounts += 1
        for d in domains:
            self._domain_owner[d] = aid

    def link_parents(self, accounts: Iterable[str]) -> list[RecordError]:
        """Link the given accounts (and those still waiting for a parent) to their parents.

        Returns the new accounts whose parent does not exist yet: they wait, and join their
        parent when it is added. Raises GraphError, changing nothing, when a link would close a
        cycle: no account can be its own ancestor.
        """
        new = list(accounts)
        problems: list[RecordError] = []
        made: list[tuple[str, str]] = []
        for aid in [*new, *(a for a in self._pending if a not in new)]:
            node = ("account", aid)
            parent = self._records[node].get("parent")
            if parent is None or parent == "":
                continue
            parent = str(parent)
            if ("account", parent) not in self._sources:
                if aid not in self._pending and aid in new:
                    problems.append(
                        RecordError(
                            f"unknown parent account {parent!r}; the account waits for it",
                            source=self._sources[node],
                            record_id=aid,
                            field="parent",
                        )
                    )
                self._pending[aid] = parent
                continue
            up: str | None = parent
            chain = [aid]
            while up is not None:  # walk up: a cycle would lead back here
                chain.append(up)
                if up == aid:
                    for child, old in made:  # undo this call's links, then refuse
                        self._unlink_parent(child, old)
                    where = ", ".join(f"{n} ({self._sources[('account', n)]})" for n in chain[:-1])
                    raise GraphError(
                        "accounts form a parent cycle: " + " -> ".join(chain) + f"; from {where}"
                    )
                up = self._parent.get(up)
            self.nx.add_edge(node, ("account", parent), kind="parent")
            self._parent[aid] = parent
            self._kids.setdefault(parent, []).append(aid)
            self._pending.pop(aid, None)
            made.append((aid, parent))
        return problems

    def _unlink_parent(self, aid: str, parent: str) -> None:
        self.nx.remove_edge(("account", aid), ("account", parent))
        del self._parent[aid]
        self._kids[parent].remove(aid)

    def remove_account(self, aid: str) -> None:
        """Take an account out again (one that a load refused); its contacts become orphans."""
        node = ("account", aid)
        if node not in self._sources:
            return
        for cid in list(self._members.pop(aid, ())):
            del self._account_of[cid]
            self._orphans[cid] = None
        for kid in list(self._kids.pop(aid, ())):
            del self._parent[kid]
            self._pending[kid] = aid
        if aid in self._parent:
            self._kids[self._parent.pop(aid)].remove(aid)
        self._pending.pop(aid, None)
        self._domain_owner = {d: a for d, a in self._domain_owner.items() if a != aid}
        self.nx.remove_node(node)
        del self._sources[node]
        del self._records[node]
        self._n_accounts -= 1

    def remove_contact(self, cid: str) -> None:
        """Take a contact out again (one that a load refused)."""
        node = ("contact", cid)
        if node not in self._sources:
            return
        aid = self._account_of.pop(cid, None)
        if aid is not None:
            self._members[aid].remove(cid)
        self._orphans.pop(cid, None)
        self.nx.remove_node(node)
        del self._sources[node]
        del self._records[node]

    def add_contact(self, cid: str, record: Mapping[str, Any], source: str) -> RecordError | None:
        """Add a contact and link it to its account (named, or matched by email domain).

        Returns the problem when the record names an account that does not exist: the contact
        is then kept without an account (an orphan), never dropped. With no account in the
        graph at all, nothing is reported: the data simply has no accounts (yet).
        """
        node = ("contact", cid)
        if node in self._sources:
            raise RecordError(
                f"duplicate contact id (first from {self._sources[node]})",
                source=source,
                record_id=cid,
                field="id",
            )
        self._new_nodes.append((node, {"kind": "contact", "record": record}))
        self._records[node] = record
        self._sources[node] = source
        self._orphans[cid] = None
        named = record.get("account")
        if named is not None and named != "":
            named = str(named)
            if ("account", named) not in self._sources:
                if not self._has_accounts():
                    return None
                return RecordError(
                    f"unknown account {named!r}; scored as a contact without an account",
                    source=source,
                    record_id=cid,
                    field="account",
                )
            self._link(cid, named, "account")
        else:
            self.match_domain(cid)
        return None

    def _has_accounts(self) -> bool:
        return self._n_accounts > 0

    def relink(self) -> None:
        """Link the orphans whose named account, or email domain's account, now exists."""
        for cid in self.orphans():
            named = self._records[("contact", cid)].get("account")
            if named is not None and named != "":
                if ("account", str(named)) in self._sources:
                    self._link(cid, str(named), "account")
            else:
                self.match_domain(cid)

    def match_domain(self, cid: str) -> str | None:
        """Link a contact without an account to the account listing its email domain.

        The domain itself or a parent domain counts (``eu.acme.com`` matches ``acme.com``);
        the longest listed domain wins. Returns the account id, or None.
        """
        node = ("contact", cid)
        if self.account_of(cid) is not None:
            return self.account_of(cid)
        domain = email_domain(self._records[node].get("email"))
        while domain:
            aid = self._domain_owner.get(domain)
            if aid is not None:
                self._link(cid, aid, "domain")
                return aid
            domain = domain.partition(".")[2] if "." in domain else ""
        return None

    def _link(self, cid: str, aid: str, via: str) -> None:
        node = ("contact", cid)
        role = self._records[node].get("role")
        link = {"kind": "member", "role": role, "via": via}
        self._new_edges.append((node, ("account", aid), link))
        self._account_of[cid] = aid
        self._members.setdefault(aid, []).append(cid)
        self._orphans.pop(cid, None)

    # ---- questions -------------------------------------------------------------------------

    def has_account(self, aid: str) -> bool:
        return ("account", aid) in self._sources

    def has_contact(self, cid: str) -> bool:
        return ("contact", cid) in self._sources

    def accounts(self) -> list[str]:
        return [n[1] for n in self._sources if n[0] == "account"]

    def contacts(self) -> list[str]:
        return [n[1] for n in self._sources if n[0] == "contact"]

    def account_of(self, cid: str) -> str | None:
        """The account a contact belongs to directly, or None for an orphan."""
        self._node("contact", cid)
        return self._account_of.get(cid)

    def parent(self, aid: str) -> str | None:
        self._node("account", aid)
        return self._parent.get(aid)

    def children(self, aid: str) -> list[str]:
        """Direct subsidiaries, by id."""
        self._node("account", aid)
        return sorted(self._kids.get(aid, ()))

    def subsidiaries(self, aid: str, deep: bool = True) -> list[str]:
        """Subsidiaries at every depth (or only direct ones), by id."""
        if not deep:
            return self.children(aid)
        self._node("account", aid)
        out: list[str] = []
        stack = list(self._kids.get(aid, ()))
        while stack:
            a = stack.pop()
            out.append(a)
            stack.extend(self._kids.get(a, ()))
        return sorted(out)

    def members(self, aid: str, deep: bool = False) -> list[str]:
        """Contacts of the account (and of its subsidiaries with ``deep``), by id."""
        accounts = [aid, *self.subsidiaries(aid)] if deep else [aid]
        self._node("account", aid)
        return sorted(c for a in accounts for c in self._members.get(a, ()))

    def members_unsorted(self, aid: str) -> list[str]:
        """Direct contacts in the order they were linked (no check that the account exists)."""
        return self._members.get(aid, [])

    def role(self, cid: str) -> str | None:
        """The contact's committee role as its record gives it (None when absent)."""
        role = self._records[self._node("contact", cid)].get("role")
        return role if isinstance(role, str) and role.strip() else None

    def committee(self, aid: str, deep: bool = False) -> dict[str | None, list[str]]:
        """The account's contacts grouped by committee role (None: no role given)."""
        out: dict[str | None, list[str]] = {}
        for cid in self.members(aid, deep):
            out.setdefault(self.role(cid), []).append(cid)
        return out

    def path(self, cid: str) -> list[str]:
        """A contact's account, then its parent, and so on up to the top-level account."""
        out: list[str] = []
        aid = self.account_of(cid)
        while aid is not None:
            out.append(aid)
            aid = self._parent.get(aid)
        return out

    def ancestors(self, aid: str) -> Iterator[str]:
        """The account's parent, grandparent, ... (not the account itself)."""
        up = self.parent(aid)
        while up is not None:
            yield up
            up = self._parent.get(up)

    def top(self, aid: str) -> str:
        """The top-level account above this one (itself when it has no parent)."""
        chain = [aid, *self.ancestors(aid)]
        return chain[-1]

    def orphans(self) -> list[str]:
        """Contacts without an account, in the order they were added."""
        return list(self._orphans)

    def bottom_up(self, aids: Iterable[str] | None = None) -> list[str]:
        """The accounts (default all) and their subsidiaries, each subsidiary before its parent."""
        wanted = self.accounts() if aids is None else list(aids)
        order: list[str] = []
        done: set[str] = set()
        for root in wanted:
            stack = [(root, False)]
            while stack:
                a, expanded = stack.pop()
                if a in done:
                    continue
                if expanded:
                    done.add(a)
                    order.append(a)
                    continue
                stack.append((a, True))
                stack.extend((k, False) for k in self._kids.get(a, ()) if k not in done)
        return order

    def source(self, kind: str, ident: str) -> str:
        """Where the record came from (``contacts.ndjson:12``, ``accounts[3]``)."""
        return self._sources[self._node(kind, ident)]

    def _node(self, kind: str, ident: str) -> Node:
        node = (kind, ident)
        if node not in self._sources:
            raise GraphError(f"unknown {kind} {ident!r}")
        return node
