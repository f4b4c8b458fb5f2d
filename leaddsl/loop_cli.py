"""The closed-loop subcommands of `leaddsl`: report, diff and tune (argparse namespace in, exit
code out). cli.py registers them and catches their LeadDSLErrors like every other command's."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import orjson

from .backtest import BEFORE, History
from .errors import LeadDSLError
from .records import Rejected
from .script import load

__all__ = ["COMMANDS", "add_parsers", "run"]

COMMANDS = ("report", "diff", "tune")


def add_parsers(sub: Any) -> None:
    """Add the report, diff and tune subcommands to ``sub`` (argparse subparsers)."""

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, type=Path,
                       help="a folder of contacts/accounts/events .ndjson (and outcomes)")
        p.add_argument("--outcomes", type=Path,
                       help="outcomes .ndjson or .csv (default: DATA/outcomes.ndjson or .csv)")
        p.add_argument("--errors", choices=("raise", "collect"), default="raise",
                       help="stop at a bad record, or set bad records aside and report them")

    def before(p: argparse.ArgumentParser) -> None:
        p.add_argument("--before", type=float, default=0.0, metavar="DAYS",
                       help="score each outcome DAYS before it (default: just before)")

    p = sub.add_parser("report", help="what each band, channel and rule predicts, on outcomes")
    p.add_argument("rules", type=Path)
    data_args(p)
    before(p)
    p.add_argument("--format", choices=("table", "json", "html"), default="table")

    p = sub.add_parser("diff", help="what changes between two scripts, on the same history")
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    data_args(p)
    before(p)
    p.add_argument("--held-out", type=float, metavar="SHARE",
                   help="measure only the contacts `tune --held-out SHARE --seed N` held out")
    p.add_argument("--seed", type=int, default=0, help="the seed given to tune (default 0)")
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = sub.add_parser("tune", help="fit the points of a script's rules to the outcomes")
    p.add_argument("rules", type=Path)
    data_args(p)
    before(p)
    p.add_argument("--held-out", type=float, default=0.3,
                   help="share of contacts kept out of the fit to measure it (default 0.3)")
    p.add_argument("--seed", type=int, default=0, help="which contacts are held out")
    p.add_argument("--l2", type=float, default=1.0, help="ridge penalty (default 1.0)")
    p.add_argument("--write", type=Path, help="write the proposed script to this file")
    p.add_argument("--format", choices=("table", "json"), default="table")


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    before = _seconds(args.before)  # bad options fail before any reading
    if args.command in ("diff", "tune") and args.held_out is not None and not (
        0 < args.held_out < 1
    ):
        raise LeadDSLError(f"--held-out takes a share between 0 and 1, got {args.held_out!r}")
    history = History.from_dir(args.data, args.outcomes, errors=args.errors)
    if args.command != "diff" and not history.outcomes.outcomes and not (
        history.outcomes.rejected
    ):
        where = (
            f"{args.outcomes} holds none"
            if args.outcomes is not None
            else f"{args.data} has no outcomes.ndjson or outcomes.csv (name a file with "
            "--outcomes)"
        )
        raise LeadDSLError(f"{args.command} needs outcomes: {where}")
    if args.command == "report":
        from .report import report

        backtest = history.backtest(load(args.rules), before=before)
        _set_aside(backtest.rejected)
        made = report(backtest)
        if args.format == "json":
            out.write(_json(made.to_dict()))
        elif args.format == "html":
            from .htmlreport import html_report

            out.write(html_report(made, title=str(args.rules)))
        else:
            out.write(made.render())
        return 0
    if args.command == "diff":
        from .diff import diff

        changes = diff(load(args.old), load(args.new), history, before=before,
                       held_out=args.held_out, seed=args.seed)
        _set_aside(changes.rejected)
        out.write(_json(changes.to_dict()) if args.format == "json" else changes.render())
        return 0
    from .tune import tune

    tuned = tune(load(args.rules), history, held_out=args.held_out, seed=args.seed, l2=args.l2,
                 before=before)
    _set_aside(tuned.rejected)
    if args.write is not None:
        args.write.write_text(tuned.text, encoding="utf-8")
    if args.format == "json":
        out.write(_json(tuned.to_dict()))
    else:
        out.write(tuned.render())
        if args.write is None:
            out.write("\nproposed script:\n\n" + tuned.text)
        else:
            # The same held-out contacts, so the diff's outcome figures are not flattered.
            review = [str(args.rules), str(args.write), "--data", str(args.data)]
            review += [] if args.outcomes is None else ["--outcomes", str(args.outcomes)]
            review += ["--held-out", f"{args.held_out:g}", "--seed", str(args.seed)]
            review += [] if args.before == 0 else ["--before", f"{args.before:g}"]
            review += [] if args.errors == "raise" else ["--errors", args.errors]
            out.write(f"\nproposed script written to {args.write}; review it with\n"
                      f"  leaddsl diff {shlex.join(review)}\n")
    return 0


def _seconds(days: float) -> float:
    if not days >= 0:
        raise LeadDSLError(f"--before takes a number of days of 0 or more, got {days!r}")
    return max(BEFORE, days * 86_400)


def _set_aside(rejected: tuple[Rejected, ...]) -> None:
    for rej in rejected:
        print(f"leaddsl: set aside {rej.reason}", file=sys.stderr)


def _json(data: object) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
