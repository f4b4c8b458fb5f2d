"""leaddsl beside the hand-written baseline and a general rule engine, in one run.

    .venv/bin/python benchmarks/bench.py [--sizes 100000 300000 1000000] [--reps 3]
                                         [--bench ../shared/bench] [--rule-engine-size 100000]
    (make bench runs it with the defaults)

For each size the shared generator writes the workload (20k contacts, 2k accounts with
subsidiary chains; cached under benchmarks/.data/, not committed). Every contender then scores
it with the shared reference ruleset, interleaved with the others, ``--reps`` times:

  hand         ../shared/bench/hand.py on parsed records (the practical limit of pure Python)
  hand e2e     the same from the NDJSON files (orjson)
  batch        leaddsl: Engine.load(parsed records) + every contact + every account
  live         leaddsl: Engine.ingest_many(events) from an engine holding only the records,
               then every result read (transitions=False; "live+trig" works out triggers
               after every event too, at one size only). A first answer is scored from the
               contact's events; live summaries are made when a contact is asked again:
  live 2 reads the same, then the clock moved on a day and every result read again (every
               contact's live summary made and used: the steady state of a live engine)
  e2e          leaddsl: score_all from the NDJSON files (parse + score + roll up)
  rule-engine  the engagement and fit rules as rule-engine expressions (PyPI), one size only

Before printing any figure the script checks that every leaddsl contender agrees with the
baseline on every contact and account total (1e-6); "live 2 reads", which answers a day later,
is checked against a batch engine moved on by the same day. It then prints medians, events/s, the
ratio to the baseline, the account step alone, and — in one extra run per size, after the
timings — the peak memory (tracemalloc) and the live state per contact; where the end-to-end
time goes (parsing, checking and grouping, scoring, rollup); and the time to compile a 500-rule
script.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

import leaddsl

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".data"


def _module(path: Path, name: str = "bench_hand") -> ModuleType:
    """A script of ../shared/bench loaded as a module (its folder on the path: hand_duckdb
    imports hand)."""
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _workload(bench: Path, events: int) -> Path:
    folder = CACHE / f"{events}"
    if not (folder / "events.ndjson").is_file():
        subprocess.run([sys.executable, str(bench / "gen.py"), str(folder), "--events",
                        str(events)], check=True, capture_output=True)
    return folder


def _read(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]


# ---- contenders: each returns (seconds, seconds of the account step, results) ----------------

Result = tuple[float, float, Any]


def hand_parsed(hand: ModuleType, data: dict[str, Any], folder: Path) -> Result:
    t0 = time.perf_counter()
    _, contacts = hand.score_contacts(data["contacts"], data["events"])
    t1 = time.perf_counter()
    accounts = hand.score_accounts(data["accounts"], contacts)
    t2 = time.perf_counter()
    return t2 - t0, t2 - t1, (contacts, accounts)


def hand_e2e(hand: ModuleType, data: dict[str, Any], folder: Path) -> Result:
    t0 = time.perf_counter()
    contacts_, accounts_, events = hand.load(str(folder))
    _, contacts = hand.score_contacts(contacts_, events)
    t1 = time.perf_counter()
    accounts = hand.score_accounts(accounts_, contacts)
    t2 = time.perf_counter()
    return t2 - t0, t2 - t1, (contacts, accounts)


def lead_batch(rules: leaddsl.Ruleset, data: dict[str, Any], folder: Path) -> Result:
    t0 = time.perf_counter()
    engine = leaddsl.Engine(rules)
    engine.load(accounts=data["accounts"], contacts=data["contacts"], events=data["events"])
    engine.contacts()
    t1 = time.perf_counter()
    engine.accounts()
    t2 = time.perf_counter()
    return t2 - t0, t2 - t1, engine


def lead_live(rules: leaddsl.Ruleset, data: dict[str, Any], folder: Path,
              transitions: bool = False, again: bool = False) -> Result:
    engine = leaddsl.Engine(rules, transitions=transitions)
    engine.load(accounts=data["accounts"], contacts=data["contacts"])
    t0 = time.perf_counter()
    engine.ingest_many(data["events"])
    engine.contacts()  # then read every result, as the batch does
    t1 = time.perf_counter()
    engine.accounts()
    t2 = time.perf_counter()
    if not again:
        return t2 - t0, t2 - t1, engine
    assert engine.as_of is not None
    engine.advance(engine.as_of.timestamp() + 86400.0)  # a day later: every result is stale
    t3 = time.perf_counter()
    engine.contacts()  # asked again: each contact's live summary is made and answers
    t4 = time.perf_counter()
    engine.accounts()
    t5 = time.perf_counter()
    return t2 - t0 + t5 - t3, t2 - t1 + t5 - t4, engine


def lead_e2e(rules: leaddsl.Ruleset, data: dict[str, Any], folder: Path) -> Result:
    t0 = time.perf_counter()
    run = leaddsl.score_all(rules, folder / "contacts.ndjson", folder / "events.ndjson",
                            accounts=folder / "accounts.ndjson")
    t1 = time.perf_counter()
    return t1 - t0, 0.0, run


def e2e_split(rules: leaddsl.Ruleset, folder: Path) -> dict[str, float]:
    """Where the end-to-end time goes: reading and parsing the NDJSON (orjson), checking and
    grouping the records, scoring the contacts, rolling up the accounts."""
    from leaddsl.columns import chunks

    t0 = time.perf_counter()
    for name in ("accounts", "contacts", "events"):
        for _ in chunks(folder / f"{name}.ndjson", name, typed=name == "events"):
            pass
    t1 = time.perf_counter()
    engine = leaddsl.Engine(rules)
    engine.load(accounts=folder / "accounts.ndjson", contacts=folder / "contacts.ndjson",
                events=folder / "events.ndjson")
    t2 = time.perf_counter()
    engine.contacts()
    t3 = time.perf_counter()
    engine.accounts()
    t4 = time.perf_counter()
    return {"parse": t1 - t0, "checks": (t2 - t1) - (t1 - t0), "score": t3 - t2,
            "rollup": t4 - t3}


def rule_engine_contender(data: dict[str, Any]) -> float:
    """The engagement and fit rules as rule-engine expressions, tried on every event."""
    import rule_engine

    ctx = rule_engine.Context(default_value=None)
    by_specificity = [  # most specific first: the first matching rule gives the points
        ('action == "clicked" and object == "campaign" and name == "Q4-launch"', 20.0),
        ('action == "visited" and object == "page" and name == "pricing"', 15.0),
        ('action == "opened" and object == "email"', 1.0),
        ('action == "clicked" and object == "campaign"', 5.0),
        ('action == "visited" and object == "page"', 2.0),
        ('action == "submitted" and object == "form"', 25.0),
        ('action == "downloaded" and object == "asset"', 10.0),
        ('action == "attended" and object == "webinar"', 20.0),
        ('action == "unsubscribed"', -10.0),
    ]
    rules = [(rule_engine.Rule(text, context=ctx), pts) for text, pts in by_specificity]
    fit = [(rule_engine.Rule(t, context=ctx), p) for t, p in (
        ('job_title =~~ "VP|Director|Head"', 15.0), ("employees >= 200", 10.0),
        ('industry in ["software", "fintech"]', 10.0))]
    t0 = time.perf_counter()
    scores: dict[str, float] = {}
    for ev in data["events"]:
        for rule, pts in rules:
            if rule.matches(ev):
                scores[ev["contact"]] = scores.get(ev["contact"], 0.0) + pts
                break
    for c in data["contacts"]:
        for rule, pts in fit:
            if rule.matches(c):
                scores[c["id"]] = scores.get(c["id"], 0.0) + pts
    return time.perf_counter() - t0


# ---- checks and figures ------------------------------------------------------------------------


def _agree(name: str, engine: Any, contacts: dict[str, Any], accounts: dict[str, float]) -> None:
    if isinstance(engine, leaddsl.Scored):
        got_c = {cid: r.total for cid, r in engine.results.items()}
        got_a = {aid: r.total for aid, r in engine.accounts.items()}
    else:
        got_c = {r.id: r.total for r in engine.contacts()}
        got_a = {r.id: r.total for r in engine.accounts()}
    bad = [c for c, r in contacts.items()
           if not math.isclose(got_c[c], r["total"], rel_tol=1e-6, abs_tol=1e-6)]
    bad += [a for a, t in accounts.items()
            if not math.isclose(got_a[a], t, rel_tol=1e-6, abs_tol=1e-6)]
    if bad:
        raise SystemExit(f"{name} disagrees with the baseline on {len(bad)} results: {bad[:5]}")


def _peak(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def _state_bytes(engine: leaddsl.Engine) -> float:
    """Bytes of live state per contact: the summaries, deeply (not the event ids' log)."""
    seen: set[int] = set()

    def size(obj: object) -> int:
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        n = sys.getsizeof(obj)
        if isinstance(obj, dict):
            n += sum(size(k) + size(v) for k, v in obj.items())
        elif isinstance(obj, (list, tuple)):
            n += sum(size(x) for x in obj)
        elif hasattr(obj, "__slots__"):
            n += sum(size(getattr(obj, s)) for s in obj.__slots__ if hasattr(obj, s))
        return n

    states = engine._states
    return sum(size(s) for s in states.values()) / max(len(states), 1)


def _compile_500(reps: int) -> float:
    lines = ["score engagement:"]
    for i in range(250):
        lines.append(f'    when visited page "p{i}": +{i % 7 + 1}')
    lines.append("score fit:")
    for i in range(250):
        lines.append(f'    when industry = "i{i}" and employees >= {i}: +{i % 5 + 1}')
    text = "\n".join(lines) + "\n"
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        leaddsl.compile(text)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _one_size(size: int, args: argparse.Namespace, hand: ModuleType,
              rules: leaddsl.Ruleset) -> None:
    """Every contender at one size. (A function, so that the size's records, engines and
    results are all freed before the next size is read: left alive, the next size's
    records fill the holes they leave, scattered over memory, and every contender that
    walks them runs slower than it would in a process of its own.)"""
    folder = _workload(args.bench, size)
    data = {n: _read(folder / f"{n}.ndjson") for n in ("contacts", "accounts", "events")}
    n = len(data["events"])
    contenders: dict[str, Callable[[], Result]] = {
        "hand": partial(hand_parsed, hand, data, folder),
        "hand e2e": partial(hand_e2e, hand, data, folder),
        "batch": partial(lead_batch, rules, data, folder),
        "live": partial(lead_live, rules, data, folder),
        "live 2 reads": partial(lead_live, rules, data, folder, again=True),
        "e2e": partial(lead_e2e, rules, data, folder),
    }
    _, _, (hc, ha) = contenders["hand"]()
    for name in ("batch", "live", "e2e"):
        _agree(name, contenders[name]()[2], hc, ha)
    # live 2 reads answers a day later: against a batch engine moved on by the same day.
    later = contenders["live 2 reads"]()[2]
    moved = leaddsl.Engine(rules)
    moved.load(accounts=data["accounts"], contacts=data["contacts"], events=data["events"])
    assert later.as_of is not None
    moved.advance(later.as_of)
    _agree("live 2 reads", later, {r.id: {"total": r.total} for r in moved.contacts()},
           {r.id: r.total for r in moved.accounts()})
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in contenders}
    for _ in range(args.reps):
        for name, run in contenders.items():
            seconds, accounts, _ = run()
            times[name].append((seconds, accounts))
    base = statistics.median(t for t, _ in times["hand"])
    for name in contenders:
        med = statistics.median(t for t, _ in times[name])
        acc = statistics.median(a for _, a in times[name])
        peak = _peak(contenders[name])
        print(f"{n:>9,}  {name:<13}{med:>9.3f}{n / med:>11,.0f}{med / base:>7.2f}"
              + (f"{acc:>11.3f}" if acc else f"{'':>11}") + f"{peak:>9.0f}")
    if size == args.rule_engine_size:
        seconds, _, engine = lead_live(rules, data, folder, transitions=True)
        _agree("live+triggers", engine, hc, ha)
        print(f"{n:>9,}  {'live+trig':<13}{seconds:>9.3f}{n / seconds:>11,.0f}"
              f"{seconds / base:>7.2f}{'':>11}{'':>9}   (1 run, transitions worked out)")
        seconds = rule_engine_contender(data)
        print(f"{n:>9,}  {'rule-engine':<13}{seconds:>9.3f}{n / seconds:>11,.0f}"
              f"{seconds / base:>7.2f}{'':>11}{'':>9}   (1 run, engagement + fit only)")
    splits = [e2e_split(rules, folder) for _ in range(args.reps)]
    parts = {k: statistics.median(sp[k] for sp in splits) for k in splits[0]}
    whole = sum(parts.values())
    print(f"{'':>11}e2e split: " + ", ".join(
        f"{k} {v:.2f}s ({v / whole:.0%})" for k, v in parts.items()))
    live = lead_live(rules, data, folder, again=True)[2]  # every summary made
    batch_med = statistics.median(t for t, _ in times["batch"])
    batch_acc = statistics.median(a for _, a in times["batch"])
    print(f"{'':>11}account step {batch_acc / (batch_med - batch_acc):.1%} of contact "
          f"scoring (batch); live state {_state_bytes(live):,.0f} bytes per contact")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--rule-engine-size", type=int, default=100_000,
                    help="the one size rule-engine and live+trig run at (slow); 0 to skip")
    args = ap.parse_args()
    hand = _module(args.bench / "hand.py")
    rules = leaddsl.load(args.bench / "reference.lead")
    print(f"leaddsl {leaddsl.__version__}, Python {sys.version.split()[0]}; medians of "
          f"{args.reps} interleaved runs; ratio = time / hand-written time on parsed records\n")
    header = (f"{'events':>9}  {'contender':<13}{'median s':>9}{'events/s':>11}{'ratio':>7}"
              f"{'accounts s':>11}{'peak MiB':>9}")
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        _one_size(size, args, hand, rules)
        gc.collect()
    print(f"\ncompiling a 500-rule script: {_compile_500(5) * 1000:.0f} ms (median of 5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
