"""The cost of account scoring next to contact scoring, leaddsl beside the hand-written baseline.

    .venv/bin/python benchmarks/rollup.py [--events 100000] [--reps 5] [--bench ../shared/bench]

Generates the shared workload (20k contacts, 2k accounts with subsidiary chains) with the shared
generator, scores it with the shared reference ruleset, and for each contender times, in the
same run and interleaved: scoring the contacts from parsed records, then scoring the accounts
(aggregates over each account's contacts and the rollup through the hierarchy). Before any
figure is printed it checks that leaddsl's contact and account totals equal the baseline's
(to 1e-6). Prints medians; the "rollup share" is the account step over the contact step.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

import leaddsl

ROOT = Path(__file__).resolve().parent.parent


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_hand", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]


def _leaddsl(rules: leaddsl.Ruleset, data: dict[str, list[dict[str, Any]]]) -> tuple[
        float, float, leaddsl.Engine]:
    engine = leaddsl.Engine(rules)
    engine.load(accounts=data["accounts"], contacts=data["contacts"], events=data["events"])
    t0 = time.perf_counter()
    engine.contacts()
    t1 = time.perf_counter()
    engine.accounts()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, engine


def _hand(hand: ModuleType, data: dict[str, list[dict[str, Any]]]) -> tuple[
        float, float, dict[str, Any], dict[str, float]]:
    t0 = time.perf_counter()
    _, contacts = hand.score_contacts(data["contacts"], data["events"])
    t1 = time.perf_counter()
    accounts = hand.score_accounts(data["accounts"], contacts)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, contacts, accounts


def _agree(engine: leaddsl.Engine, contacts: dict[str, Any], accounts: dict[str, float]) -> None:
    bad = [cid for cid, r in contacts.items()
           if not math.isclose(engine.contact(cid).total, r["total"], rel_tol=1e-6, abs_tol=1e-6)]
    bad += [aid for aid, total in accounts.items()
            if not math.isclose(engine.account(aid).total, total, rel_tol=1e-6, abs_tol=1e-6)]
    if bad:
        raise SystemExit(f"leaddsl disagrees with the baseline on {len(bad)} results: {bad[:5]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench",
                    help="the shared benchmark folder (gen.py, hand.py, reference.lead)")
    args = ap.parse_args()
    hand = _module(args.bench / "hand.py")
    rules = leaddsl.load(args.bench / "reference.lead")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(args.bench / "gen.py"), tmp, "--events",
                        str(args.events)], check=True, capture_output=True)
        data = {name: _read(Path(tmp) / f"{name}.ndjson")
                for name in ("contacts", "accounts", "events")}

    _, _, engine = _leaddsl(rules, data)
    _, _, hc, ha = _hand(hand, data)
    _agree(engine, hc, ha)
    print(f"agreement: {len(hc):,} contacts and {len(ha):,} accounts equal the baseline (1e-6)")

    times: dict[str, list[float]] = {k: [] for k in ("hand_c", "hand_a", "lead_c", "lead_a")}
    for _ in range(args.reps):  # interleaved, so both see the same machine
        c, a, _, _ = _hand(hand, data)
        times["hand_c"].append(c)
        times["hand_a"].append(a)
        c, a, _ = _leaddsl(rules, data)
        times["lead_c"].append(c)
        times["lead_a"].append(a)
    med = {k: statistics.median(v) for k, v in times.items()}
    n = len(data["events"])
    print(f"{n:,} events, {len(data['contacts']):,} contacts, {len(data['accounts']):,} accounts;"
          f" medians of {args.reps} interleaved runs")
    print(f"{'':<14}{'contacts (s)':>14}{'accounts (s)':>14}{'rollup share':>14}")
    for name, c, a in (("hand-written", med["hand_c"], med["hand_a"]),
                       ("leaddsl", med["lead_c"], med["lead_a"])):
        print(f"{name:<14}{c:>14.3f}{a:>14.3f}{a / c:>14.1%}")
    print(f"{'ratio':<14}{med['lead_c'] / med['hand_c']:>13.2f}x"
          f"{med['lead_a'] / med['hand_a']:>13.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
