"""The `leaddsl` command: argv in, exit code out (0 fine, 1 a user's mistake, 2 bad usage).

Every LeadDSLError is caught once here and printed to stderr as one line plus, for scripts, the
caret form. Any other traceback is a bug.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from . import loop_cli
from .accounts import AccountResult
from .bulk import Scored, score_all
from .engine import top_results
from .errors import LeadDSLError, ScriptError
from .filters import Filter, where
from .results import ContactResult, Contribution
from .ruleset import Ruleset
from .script import check, load

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="leaddsl", description="Lead and account scoring as code.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="report every problem in rule scripts")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--strict", action="store_true", help="fail on warnings too")

    p = sub.add_parser("fmt", help="format rule scripts in place")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--check", action="store_true", help="exit 1 if a file would change")

    p = sub.add_parser("sql", help="print the script compiled to SQL, for review or a warehouse")
    p.add_argument("rules", type=Path)
    p.add_argument("--dialect", default="duckdb", help="duckdb (default), spark, snowflake, "
                   "bigquery, ... (any sqlglot dialect)")
    p.add_argument("--accounts", action="store_true",
                   help="the account block's query (reads accounts, members, hierarchy too)")
    p.add_argument("--levels", type=int, default=10,
                   help="hierarchy levels the account query scores (default 10)")

    p = sub.add_parser("repl", help="explore contacts and accounts interactively")
    p.add_argument("rules", nargs="?", type=Path)
    p.add_argument("--data", type=Path, help="a folder of contacts/accounts/events .ndjson")

    for name, text in (
        ("score", "score contacts and accounts"),
        ("explain", "explain one contact's or account's points"),
        ("sales-view", "priorities and reasons for sales, without the raw points"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("rules", type=Path)
        p.add_argument("--contacts", required=True, type=Path, help="contacts NDJSON")
        p.add_argument("--events", type=Path, help="events NDJSON")
        p.add_argument("--accounts", type=Path, help="accounts NDJSON")
        p.add_argument("--as-of", help="evaluation time (default: the latest event)")
        p.add_argument(
            "--errors",
            choices=("raise", "collect"),
            default="raise",
            help="stop at a bad record, or set bad records aside and report them",
        )
        if name == "score":
            p.add_argument(
                "--backend",
                choices=("python", "duckdb"),
                default="python",
                help="python (default) or duckdb: the script compiled to SQL, for large "
                "histories (pip install 'leaddsl[batch]'); inputs may then be Parquet and globs",
            )
            p.add_argument("--out", type=Path, help="write every result to a .parquet or "
                           ".ndjson file (accounts beside it) instead of printing")
            p.add_argument("--threads", type=int, help="DuckDB threads (default: every core)")
        if name in ("score", "sales-view"):
            p.add_argument("--format", choices=("table", "json", "ndjson", "csv"), default="table")
            p.add_argument("--top", type=int, help="only the N best contacts (and accounts)")
            p.add_argument(
                "--accounts-only", action="store_true", help="print accounts, not contacts"
            )
            p.add_argument(
                "--where",
                help='a condition in the rule language, e.g. \'band = "hot"\' (on accounts '
                "with --accounts-only)",
            )
        else:
            who = p.add_mutually_exclusive_group(required=True)
            who.add_argument("--contact", help="the contact id")
            who.add_argument("--account", help="the account id")
    loop_cli.add_parsers(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    code = _main(argv)
    try:
        sys.stdout.flush()  # here, not at exit, where a closed pipe could not be answered
    except BrokenPipeError:
        return _reader_gone()
    return code


def _reader_gone() -> int:
    """The reader stopped early (`leaddsl … | head`): its choice, not a mistake. Point stdout
    at nothing so the interpreter's last flush does not fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    out = sys.stdout
    try:
        if args.command == "check":
            return _check(args.files, args.strict)
        if args.command == "fmt":
            return _fmt(args.files, args.check)
        if args.command == "repl":
            return _repl(args.rules, args.data)
        if args.command in loop_cli.COMMANDS:
            return loop_cli.run(args)
        rules = load(args.rules)
        if args.command == "sql":
            part = "accounts" if args.accounts else "contacts"
            out.write(rules.to_sql(dialect=args.dialect, part=part, levels=args.levels) + "\n")
            return 0
        if getattr(args, "backend", "python") == "duckdb":
            return _score_duckdb(rules, args)
        if getattr(args, "out", None) is not None:
            raise LeadDSLError("--out writes the results of --backend duckdb")
        accounts_only = getattr(args, "accounts_only", False)
        if (accounts_only or getattr(args, "account", None)) and rules.accounts is None:
            raise LeadDSLError(f"{args.rules} has no account block, so accounts have no scores")
        keep: Filter | None = None
        if getattr(args, "where", None):
            keep = where(rules, args.where, accounts=accounts_only, filename="--where")
            rules = keep.rules  # counts what the filter tests, if the script does not
        progress = Progress(sys.stderr)
        try:
            run = score_all(
                rules,
                args.contacts,
                args.events or (),
                accounts=args.accounts or (),
                as_of=args.as_of,
                errors=args.errors,
                progress=progress,
            )
        finally:
            progress.done()
        for rej in run.rejected:
            print(f"leaddsl: set aside {rej.reason}", file=sys.stderr)
        if args.command == "explain":
            if args.account is not None:
                return _explain_account(run, args.account)
            return _explain(run, args.contact)
        if accounts_only:
            chosen: Sequence[Any] = run.top_accounts(_n(args.top, run.accounts), where=keep)
        else:
            chosen = run.top(_n(args.top, run.results), where=keep)
        if args.command == "sales-view":
            out.write(_render_rows(_sales_rows(chosen), args.format))
            return 0
        out.write(_render(chosen, args.format))
        if args.format == "table" and run.accounts and not accounts_only:
            out.write("\n" + _render(run.top_accounts(_n(args.top, run.accounts)), "table"))
        return 0
    except ScriptError as exc:
        print(exc, file=sys.stderr)
        return 1
    except LeadDSLError as exc:
        print(f"leaddsl: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return _reader_gone()
    except OSError as exc:
        print(f"leaddsl: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1


def _score_duckdb(rules: Ruleset, args: argparse.Namespace) -> int:
    """`score --backend duckdb`: the batch backend, results printed or written to --out."""
    from . import batch

    if args.where:
        raise LeadDSLError("--where filters results of the python backend; with duckdb, "
                           "filter the written rows")
    progress = Progress(sys.stderr)
    try:
        run = batch.score(
            rules,
            events=str(args.events) if args.events else [],
            contacts=str(args.contacts),
            accounts=str(args.accounts) if args.accounts else [],
            as_of=args.as_of,
            threads=args.threads,
            errors=args.errors,
            progress=progress,
        )
    finally:
        progress.done()
    for rej in run.rejected:
        print(f"leaddsl: set aside {rej.reason}", file=sys.stderr)
    if args.out is not None:
        written = run.write(args.out)
        print(f"leaddsl: {len(run.contacts)} contacts, {len(run.accounts)} accounts, "
              f"{run.events} events; wrote {', '.join(map(str, written))}", file=sys.stderr)
        return 0
    rows = run.accounts if args.accounts_only else run.contacts
    results = [_as_result(r) for r in rows]
    chosen = top_results(results, _n(args.top, results), "score", lambda r: True)
    sys.stdout.write(_render(chosen, args.format))
    return 0


def _as_result(row: Mapping[str, Any]) -> ContactResult:
    when = row["as_of"]
    return ContactResult(
        id=row["id"], total=row["total"], scores=row["scores"], labels=row["labels"],
        qualified=row["qualified"], disqualified=row["disqualified"],
        reasons=tuple(row["reasons"]),
        as_of=None if when is None else datetime.fromisoformat(when),
    )


def _repl(rules: Path | None, data: Path | None) -> int:
    try:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        from .repl import Repl
    except ImportError:
        raise LeadDSLError(
            "the REPL needs prompt_toolkit: pip install 'leaddsl[repl]'"
        ) from None
    history: Any = InMemoryHistory()
    with contextlib.suppress(OSError):
        path = Path.home() / ".leaddsl_history"
        path.touch()
        history = FileHistory(str(path))
    Repl(sys.stdout, rules, data).run(PromptSession(history=history))
    return 0


def _check(files: list[Path], strict: bool) -> int:
    failed = False
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"leaddsl: {path}: {exc.strerror}", file=sys.stderr)
            failed = True
            continue
        for diag in check(text, str(path)):
            print(diag.render())
            failed |= diag.is_error or (strict and diag.severity == "warning")
    return 1 if failed else 0


def _fmt(files: list[Path], check_only: bool) -> int:
    from .formatter import format as format_text

    changed = False
    for path in files:
        text = path.read_text(encoding="utf-8")
        new = format_text(text, str(path))
        if new != text:
            changed = True
            if check_only:
                print(f"would reformat {path}")
            else:
                path.write_text(new, encoding="utf-8")
                print(f"reformatted {path}")
    return 1 if (check_only and changed) else 0


def _explain(run: Scored, contact: str) -> int:
    result = run.results.get(contact)
    if result is None:
        raise LeadDSLError(f"no contact {contact!r} in the data")
    _summary(result)
    print("\npoints:")
    _points_and_missing(result)
    return 0


def _explain_account(run: Scored, account: str) -> int:
    result = run.accounts.get(account)
    if result is None:
        raise LeadDSLError(f"no account {account!r} in the data")
    _summary(result)
    if result.parent is not None:
        print(f"parent: {result.parent}")
    if result.subsidiaries:
        print("subsidiaries: " + ", ".join(result.subsidiaries))
    left_out = [c for c in result.members if c not in result.eligible]
    print(
        f"contacts: {len(result.eligible)} counted"
        + (f", {len(left_out)} disqualified ({', '.join(left_out)})" if left_out else "")
    )
    print("\npoints (with the contacts behind them):")
    _points_and_missing(result)
    return 0


def _summary(result: ContactResult | AccountResult) -> None:
    """Total, models, labels and the qualification of a contact or an account."""
    print(f"{result.id}: {result.total:.2f} points at {result.as_of}")
    for model, value in result.scores.items():
        print(f"  {model}: {value:.2f}")
    for name, label in result.labels.items():
        print(f"  {name}: {label}")
    print(
        "qualified"
        if result.qualified
        else "disqualified: " + ", ".join(result.reasons)
        if result.disqualified
        else "not qualified"
    )


def _points_and_missing(result: ContactResult | AccountResult) -> None:
    for row in result.explain():
        print("  " + row.describe())
    for line in result.missing():
        mark = "holds" if line.holds else "fails"
        print(f"\nline {line.line} {mark}: {line.text}")
        for term in line.conditions:
            print(f"  [{'x' if term.holds else ' '}] {term.text}")


def _n(top: int | None, rows: Any) -> int:
    return top if top is not None else len(rows)


def _rows(results: Sequence[ContactResult | AccountResult]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for rank, r in enumerate(results, 1):
        row: dict[str, object] = {"rank": rank, "id": r.id, "total": round(r.total, 6)}
        row.update({m: round(v, 6) for m, v in r.scores.items()})
        row.update(r.labels)
        row["qualified"] = r.qualified
        row["disqualified"] = "; ".join(r.reasons)
        if isinstance(r, AccountResult):
            row["parent"] = r.parent or ""
            row["contacts"] = len(r.eligible)
        rows.append(row)
    return rows


def _render(results: Sequence[ContactResult | AccountResult], fmt: str) -> str:
    if fmt in ("json", "ndjson"):
        return _render_rows([r.to_dict() for r in results], fmt)
    return _render_rows(_rows(results), fmt)


def _render_rows(rows: list[dict[str, object]], fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "ndjson":
        return "".join(orjson.dumps(r).decode() + "\n" for r in rows)
    if fmt == "csv":
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return buf.getvalue()
    if not rows:
        return "no results\n"
    cols = list(rows[0])
    cells = [[_cell(row[c]) for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _sales_rows(results: Sequence[ContactResult | AccountResult]) -> list[dict[str, object]]:
    """What sales sees (seed 002): the priority and the reasons, never the raw points."""
    rows: list[dict[str, object]] = []
    for rank, r in enumerate(results, 1):
        attrs_ = r.state.attrs if r.state is not None else {}
        row: dict[str, object] = {"rank": rank, "id": r.id}
        name = " ".join(str(attrs_[k]) for k in ("first_name", "last_name") if attrs_.get(k))
        row["name"] = name or str(attrs_.get("name") or "")
        if not isinstance(r, AccountResult):
            row["account"] = str(attrs_.get("account") or "")
        row.update(r.labels)
        row["status"] = (
            "disqualified: " + ", ".join(r.reasons)
            if r.disqualified
            else "qualified"
            if r.qualified
            else "not yet"
        )
        strongest = sorted((c for c in r.explain() if c.points > 0), key=lambda c: -c.points)
        row["why"] = "; ".join(_reason(c) for c in strongest[:3])
        missing = [t.text for line in r.missing()[:1] for t in line.failing]
        row["missing"] = "; ".join(missing) if not r.qualified and not r.disqualified else ""
        rows.append(row)
    return rows


def _reason(c: Contribution) -> str:
    """A rule as a reason: its condition, without its points."""
    text = c.rule
    if text.startswith("when ") and ":" in text:
        text = text[5:].rsplit(":", 1)[0]
    if c.account is not None and c.kind != "adjustment":
        who = ", ".join(cid for cid, _ in c.contacts[:3])
        text += f" ({who})" if who else ""
    return text


class Progress:
    """Counts on stderr while a long run works, when stderr is a terminal; quiet in pipes."""

    def __init__(self, stream: Any, delay: float = 0.5) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self.delay = delay
        self.shown = False

    def __call__(self, what: str, n: int) -> None:
        if self.tty and time.monotonic() - self.start >= self.delay:
            self.stream.write(f"\r{what}: {n:,}...\033[K")
            self.stream.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)
