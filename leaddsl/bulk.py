"""Score many contacts (and their accounts) at once: records or NDJSON files in, a Scored out.

The as-of time defaults to the latest event over all the data, so a re-run gives the same
answer. A bad record either stops the run (``errors="raise"``) or is set aside with its reason
(``errors="collect"``); either way, none is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs

from .accounts import AccountResult
from .engine import Engine, Progress, Records, paused_gc, top_results
from .records import Rejected
from .results import ContactResult
from .ruleset import Ruleset

__all__ = ["score_all", "Scored"]


@attrs.frozen
class Scored:
    """Results of a run, by id in input order, and every record set aside.

    ``accounts`` is empty when the script has no account block; ``orphans`` are the contacts
    that belong to no account (scored as contacts all the same).
    """

    results: dict[str, ContactResult]
    rejected: tuple[Rejected, ...]
    as_of: datetime | None
    events: int  # events scored
    accounts: dict[str, AccountResult] = attrs.Factory(dict)
    orphans: tuple[str, ...] = ()

    def top(
        self, n: int = 10, by: str = "total", where: Callable[[ContactResult], bool] | None = None
    ) -> list[ContactResult]:
        """The ``n`` best contacts by total (or by a model), ties by id; optionally filtered."""
        return top_results(list(self.results.values()), n, by, where or _everything)

    def top_accounts(
        self, n: int = 10, by: str = "total", where: Callable[[AccountResult], bool] | None = None
    ) -> list[AccountResult]:
        """The ``n`` best accounts by total (or by a model), ties by id; optionally filtered."""
        return top_results(list(self.accounts.values()), n, by, where or _everything)


def _everything(result: object) -> bool:
    return True


def score_all(
    rules: Ruleset,
    contacts: Records,
    events: Records = (),
    *,
    accounts: Records = (),
    as_of: object = None,
    errors: str = "raise",
    progress: Progress | None = None,
) -> Scored:
    """Score every contact from its events, and every account from its contacts.

    Args:
        rules: a compiled Ruleset.
        contacts: contact mappings, or the path of an NDJSON file of them.
        events: event mappings (each with a ``contact`` id), or an NDJSON path.
        accounts: account mappings, or an NDJSON path (scored when the script has an account
            block; always used to link contacts).
        as_of: the evaluation time; default the latest event time in ``events``.
        errors: ``"raise"`` stops at the first bad record with a RecordError naming it;
            ``"collect"`` sets every bad record aside in ``Scored.rejected`` and goes on.
        progress: called now and then with (what, how many so far) on long runs.

    Returns:
        A Scored with one ContactResult per valid contact (and AccountResult per account).

    Example:
        >>> rules = compile("when opened email: +1")
        >>> run = score_all(rules, [{"id": "c1"}], [{"id": "e1", "contact": "c1",
        ...     "action": "opened", "object": "email", "at": "2026-01-01T00:00:00Z"}])
        >>> run.results["c1"].total
        1.0
    """
    engine = Engine(rules, as_of=as_of)
    report = engine.load(
        contacts=contacts, accounts=accounts, events=events, errors=errors, progress=progress
    )
    results = {}
    with paused_gc():
        for i, cid in enumerate(engine.contact_ids(), 1):
            results[cid] = engine.contact(cid)
            if progress is not None and i % 5_000 == 0:
                progress("contacts scored", i)
    scored_accounts = {}
    if rules.accounts is not None:
        scored_accounts = {r.id: r for r in engine.accounts()}
    return Scored(
        results,
        report.rejected,
        engine.as_of,
        engine.events,
        scored_accounts,
        report.orphans,
    )
