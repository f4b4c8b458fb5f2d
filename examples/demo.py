"""Score the example data with the example rules: who is hot, and why?

    .venv/bin/python examples/demo.py      (or: make demo)

Loads examples/rules.lead, scores examples/data/ (accounts, contacts and six months of events),
and prints the top contacts, the explanation of the best one, what the best contact that is not
qualified yet is missing, then the top accounts and who at the best one is engaged. Runs from
any working directory.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections import Counter
from pathlib import Path

import leaddsl

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules.lead"
DATA = HERE / "data"
TOP = 15
WIDTH = 96  # long explanation lines wrap here


def shown(path: Path) -> str:
    """A path relative to the repository when it is inside it, for tidy output."""
    try:
        return str(path.relative_to(HERE.parent))
    except ValueError:
        return str(path)


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def title_of(result: leaddsl.ContactResult, contacts: dict[str, dict[str, object]]) -> str:
    title = contacts.get(result.id, {}).get("job_title")
    return title if isinstance(title, str) and title.strip() else "(no title)"


def status(result: leaddsl.ContactResult) -> str:
    if result.disqualified:
        return "DQ: " + ", ".join(result.reasons)
    return "yes" if result.qualified else "no"


def wrap(line: str, indent: str = "  ") -> str:
    """An explanation line, folded under its rule text when it is too wide."""
    text = indent + line
    if len(text) <= WIDTH:
        return text
    at = text.find(" line ")
    pad = " " * (at + 1 if at >= 0 else len(indent) + 4)
    head, sep, tail = text.rpartition("  [")
    if sep and len(head) <= WIDTH:  # the [events, decay, cap] note on its own line
        return head + "\n" + pad + "[" + tail
    return textwrap.fill(text, WIDTH, subsequent_indent=pad, break_long_words=False,
                         break_on_hyphens=False)


def reason(rejected: leaddsl.Rejected) -> str:
    """A reject's reason, with the data files named relative to the repository."""
    return rejected.reason.replace(str(HERE.parent) + os.sep, "")


def read_contacts(path: Path) -> dict[str, dict[str, object]]:
    """The contact records by id (for job titles: results keep scores and labels only)."""
    out: dict[str, dict[str, object]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line) if line.strip() else None
            except ValueError:
                continue  # score_all has set such a line aside already
            if isinstance(rec, dict) and rec.get("id") is not None:
                out.setdefault(str(rec["id"]), rec)
    return out


def main() -> int:
    rules = leaddsl.load(RULES)
    contacts_file, events_file = DATA / "contacts.ndjson", DATA / "events.ndjson"
    run = leaddsl.score_all(rules, contacts_file, events_file, accounts=DATA / "accounts.ndjson",
                            errors="collect")
    contacts = read_contacts(contacts_file)
    results = list(run.results.values())

    as_of = run.as_of.strftime("%Y-%m-%d %H:%M UTC") if run.as_of else "-"
    bands = Counter(r.labels.get("band", "?") for r in results)
    print(f"leaddsl demo: {shown(RULES)} on {shown(DATA)}/")
    print(f"  contacts  {len(results):>6,}    events  {run.events:>6,}    as of  {as_of}")
    print(f"  qualified {sum(r.qualified for r in results):>6,}    disqualified "
          f"{sum(r.disqualified for r in results):,}    bands  "
          + "  ".join(f"{b} {bands[b]}" for b in ("hot", "warm", "cold") if b in bands))
    print(f"  rejected  {len(run.rejected):>6,}" + ("    (records set aside, not scored)"
                                                     if run.rejected else ""))
    for rej in run.rejected[:3]:
        print(f"    - {cut(reason(rej), WIDTH - 6)}")
    if len(run.rejected) > 3:
        print(f"    ... and {len(run.rejected) - 3} more")

    top = run.top(TOP)
    print()
    print(f"Top {len(top)} contacts by score")
    header = f"{'#':>3}  {'contact':<7}  {'job title':<32}  {'score':>6}  {'band':<4}  " \
             f"{'grade':<5}  {'priority':<8}  qualified"
    print(header)
    print("-" * len(header))
    for rank, r in enumerate(top, 1):
        print(f"{rank:>3}  {r.id:<7}  {cut(title_of(r, contacts), 32):<32}  {r.total:>6.1f}  "
              f"{r.labels.get('band', '?'):<4}  {r.labels.get('grade', '?'):<5}  "
              f"{r.labels.get('priority', '?'):<8}  {status(r)}")

    if top:
        best = top[0]
        print()
        print(f"Why {best.id} is #1 ({title_of(best, contacts)}, {best.total:.1f} points, "
              f"{'qualified' if best.qualified else 'not qualified'})")
        for row in best.explain():
            print(wrap(row.describe()))
        print(f"  {best.total:+8.2f}  total")

    waiting = run.top(1, where=lambda r: not r.qualified and not r.disqualified)
    if waiting:
        (near,) = waiting
        place = next(i for i, r in enumerate(run.top(len(results)), 1) if r.id == near.id)
        print()
        print(f"Best contact not qualified yet: {near.id} ({title_of(near, contacts)}), "
              f"#{place} with {near.total:.1f} points")
        for line in near.missing():
            print(f"  line {line.line}: {line.text}")
            for term in line.conditions:
                print(f"      {'ok' if term.holds else 'MISSING':<7}  {term.text}")
    show_accounts(run)
    return 0


def show_accounts(run: leaddsl.Scored) -> None:
    """The best accounts (subsidiaries rolled up into their groups), and who is engaged."""
    if not run.accounts:
        return
    tops = run.top_accounts(10)
    tiers = Counter(a.labels.get("tier", "?") for a in run.accounts.values())
    print()
    print(f"Top {len(tops)} of {len(run.accounts)} accounts (subsidiaries rolled up into their "
          f"parents; {len(run.orphans)} contacts belong to no account)")
    print("  tiers: " + "  ".join(f"{t} {n}" for t, n in sorted(tiers.items())))
    header = f"{'#':>3}  {'account':<7}  {'score':>7}  {'tier':<9}  {'motion':<12}  " \
             f"{'parent':<6}  {'people':>6}  qualified"
    print(header)
    print("-" * len(header))
    for rank, a in enumerate(tops, 1):
        print(f"{rank:>3}  {a.id:<7}  {a.total:>7.1f}  {a.labels.get('tier', '?'):<9}  "
              f"{a.labels.get('motion', '?'):<12}  {a.parent or '-':<6}  {len(a.eligible):>6}  "
              + ("DQ: " + ", ".join(a.reasons) if a.disqualified else
                 "yes" if a.qualified else "no"))
    best = tops[0]
    print()
    print(f"Why {best.id} leads ({best.total:.1f} points, {best.labels.get('tier', '?')}): "
          "its own rules, then its subsidiaries',")
    print("with the contacts behind each row")
    for row in best.explain():
        print(wrap(row.describe()))
    print(f"  {best.total:+8.2f}  total")


if __name__ == "__main__":
    sys.exit(main())
