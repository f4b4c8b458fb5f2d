"""Simulate a sales funnel with a known ground truth: contacts, accounts, events and outcomes.

    python examples/funnel.py --out /tmp/funnel              # 1,500 contacts
    python examples/funnel.py --out /tmp/funnel --contacts 400 --seed 3

The closed-loop tools (leaddsl report, diff, tune) are only trustworthy if they find what is
really there. This world is made so that we know what that is (TRUTH below):

- what predicts buying: visits to the pricing page (each of the first four), a demo request,
  attending a webinar, and a committee whose decision maker is engaged;
- what does not: newsletter opens and clicks (loyal readers open everything and buy no more
  than anyone else), blog visits, downloads;
- students download everything, sometimes ask for a demo, and never buy;
- paid search ("ads") brings contacts with more intent than social posts.

Each contact is active for about six weeks and its outcome is decided one to two months after
it appeared (``open`` if that falls after the end of the data); an account is won with its
first won contact if its decision maker is engaged (else only one time in four), and lost
when all its contacts' outcomes are decided otherwise. Winners keep visiting the
pricing page and the docs *after* signing: scoring them as of the end of the data, instead of
just before their outcome, makes pricing look even better than it is (the leak a backtest must
avoid). Only the standard library is used; the same arguments always write the same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAYS = 270
END = START + timedelta(days=DAYS)

# The log-odds of winning: the planted truth the tools must recover.
TRUTH = {
    "intercept": -3.2,
    "pricing visit": 0.8,  # per visit, the first four
    "demo request": 1.6,
    "webinar": 0.6,
    "decision maker engaged": 0.9,  # anyone in an account whose decision maker shows intent
    "newsletter open": 0.0,
    "newsletter click": 0.0,
    "blog visit": 0.0,
    "download": 0.0,
}
ROLES = ["decision maker", "champion", "influencer", "user", "user"]
TITLES = {"decision maker": "VP Marketing", "champion": "Head of Marketing Operations",
          "influencer": "Marketing Manager", "user": "Marketing Analyst"}
INDUSTRIES = ["Software", "E-commerce", "Financial services", "Retail", "Manufacturing"]


def simulate(n_contacts: int = 1500, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """The records of one simulated world: contacts, accounts, events, outcomes."""
    rng = random.Random(seed)
    n_accounts = max(1, n_contacts // 6)
    accounts = [
        {"id": f"a{i:03d}", "name": f"Company {i}", "industry": rng.choice(INDUSTRIES),
         "employees": rng.choice([20, 80, 250, 900, 3000])}
        for i in range(1, n_accounts + 1)
    ]
    people: list[dict[str, Any]] = []
    for i in range(1, n_contacts + 1):
        student = rng.random() < 0.04
        intent = "none" if student else rng.choices(["none", "some", "high"], [55, 30, 15])[0]
        source = rng.choices(["ads", "social", "web"], weights={
            "none": [15, 45, 40], "some": [35, 25, 40], "high": [55, 10, 35]}[intent])[0]
        role = rng.choice(ROLES)
        person = {
            "id": f"c{i:04d}",
            "student": student,
            "intent": intent,
            "source": source,
            "reader": rng.random() < 0.35,
            "start": rng.uniform(0, DAYS - 40),
            "role": None if student else role,
            "account": None if student else rng.choice(accounts)["id"],
        }
        people.append(person)
    events: list[tuple[float, str, str, str, str, str]] = []

    def add(p: dict[str, Any], day: float, action: str, obj: str, name: str, channel: str) -> None:
        events.append((day, p["id"], action, obj, name, channel))

    behaviour: dict[str, dict[str, int]] = {}
    for p in people:
        t0, intent = p["start"], p["intent"]

        def when(t0: float = t0) -> float:
            return t0 + rng.uniform(0, 42)

        b = {
            "opens": rng.randint(20, 40) if p["reader"] else rng.randint(0, 5),
            "clicks": rng.randint(4, 12) if p["reader"] else rng.randint(0, 2),
            "pricing": {"none": rng.choices([0, 1], [85, 15])[0], "some": rng.randint(1, 3),
                        "high": rng.randint(2, 6)}[intent],
            "demo": rng.random() < {"none": 0.01, "some": 0.12, "high": 0.5}[intent],
            "webinar": rng.random() < {"none": 0.1, "some": 0.35, "high": 0.5}[intent],
            "blog": rng.randint(0, 8),
            "downloads": rng.randint(0, 2),
        }
        if p["student"]:
            b.update(pricing=rng.randint(0, 1), demo=rng.random() < 0.25, webinar=True,
                     downloads=rng.randint(3, 6))
        behaviour[p["id"]] = b
        for k in range(b["opens"]):
            add(p, when(), "opened", "email", f"newsletter-{k % 20:02d}", "email")
        for k in range(b["clicks"]):
            add(p, when(), "clicked", "email", f"newsletter-{k % 20:02d}", "email")
        for _ in range(b["pricing"]):
            add(p, when(), "visited", "page", "pricing", p["source"])
        for _ in range(b["blog"]):
            add(p, when(), "visited", "page", f"blog-{rng.randint(1, 12)}", "web")
        for k in range(b["downloads"]):
            add(p, when(), "downloaded", "asset", f"guide-{k + 1}", "web")
        if b["webinar"]:
            add(p, when(), "attended", "webinar", "webinar-scoring", "events")
        if b["demo"]:
            add(p, t0 + rng.uniform(30, 42), "submitted", "form", "demo-request", p["source"])

    engaged = {p["account"] for p in people
               if p["role"] == "decision maker" and p["intent"] != "none"}
    outcomes = []
    for p in people:
        b = behaviour[p["id"]]
        logit = (TRUTH["intercept"] + TRUTH["pricing visit"] * min(b["pricing"], 4)
                 + TRUTH["demo request"] * b["demo"] + TRUTH["webinar"] * b["webinar"]
                 + TRUTH["decision maker engaged"] * (p["account"] in engaged))
        won = not p["student"] and rng.random() < 1 / (1 + math.exp(-logit))
        decided = p["start"] + rng.uniform(45, 75)
        if decided > DAYS:
            outcomes.append({"contact": p["id"], "outcome": "open", "at": _iso(DAYS)})
            continue
        record: dict[str, Any] = {"contact": p["id"], "outcome": "won" if won else "lost",
                                  "at": _iso(decided)}
        if won:
            record["value"] = rng.choice([6000, 12000, 24000, 48000])
            # Customers keep coming back after signing: the events a backtest must not see.
            for _ in range(rng.randint(2, 6)):
                add(p, decided + rng.uniform(1, 60), "visited", "page", "pricing", "web")
            for _ in range(rng.randint(2, 8)):
                add(p, decided + rng.uniform(1, 60), "visited", "page", "docs", "web")
        outcomes.append(record)

    by_account: dict[str, list[dict[str, Any]]] = {}
    for p, o in zip(people, outcomes, strict=True):
        if p["account"] is not None:
            by_account.setdefault(p["account"], []).append(o)
    for a in accounts:
        mine = by_account.get(a["id"], [])
        wins = sorted(o["at"] for o in mine if o["outcome"] == "won")
        # A committee whose decision maker is engaged closes; others mostly stall.
        if wins and (a["id"] in engaged or rng.random() < 0.25):
            outcomes.append({"account": a["id"], "outcome": "won", "at": wins[0]})
        elif mine and all(o["outcome"] != "open" for o in mine):
            # Decided when its first contact's deal was, like a won account.
            outcomes.append({"account": a["id"], "outcome": "lost",
                             "at": min(o["at"] for o in mine)})
        elif mine:
            outcomes.append({"account": a["id"], "outcome": "open", "at": _iso(DAYS)})

    contacts = []
    for p in people:
        rec: dict[str, Any] = {"id": p["id"]}
        if p["student"]:
            rec.update(email=f"{p['id']}@university.edu", job_title="Student")
        else:
            rec.update(email=f"{p['id']}@{p['account']}.example", job_title=TITLES[p["role"]],
                       role=p["role"], account=p["account"])
        contacts.append(rec)
    events.sort()
    event_records = [
        {"id": f"e{i}", "contact": cid, "action": action, "object": obj, "name": name,
         "channel": channel, "at": _iso(day)}
        for i, (day, cid, action, obj, name, channel) in enumerate(events, 1)
        if day <= DAYS
    ]
    return {"contacts": contacts, "accounts": accounts, "events": event_records,
            "outcomes": outcomes}


def _iso(day: float) -> str:
    return (START + timedelta(days=day)).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def write(out: Path, n_contacts: int = 1500, seed: int = 7) -> Path:
    """Write contacts/accounts/events/outcomes.ndjson under ``out``; return ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for name, records in simulate(n_contacts, seed).items():
        with open(out / f"{name}.ndjson", "w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to write the data to")
    ap.add_argument("--contacts", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    write(args.out, args.contacts, args.seed)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
