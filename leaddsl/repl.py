"""The REPL: load rules and data, then ask who is hot, and why.

    leaddsl repl [RULES] [--data DIR]

Built on prompt_toolkit (history, tab completion of commands, ids, model and ladder names,
multi-line rules with `add`). A mistake prints its diagnostic and the session goes on. The loop
reads from any PromptSession, so tests drive it with prompt_toolkit's pipe input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import orjson
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from .diagnostics import suggest
from .engine import Engine
from .errors import LeadDSLError, ScriptError
from .filters import where
from .records import parse_time
from .ruleset import Ruleset
from .script import compile as compile_script

__all__ = ["Repl", "COMMANDS"]

COMMANDS = {
    "help": "this list",
    "top": "top accounts|contacts [N] [where CONDITION]",
    "show": "show ID: scores, labels and flags of a contact or an account",
    "why": "why ID: every point, with the rules, events and contacts behind it",
    "committee": "committee ACCOUNT: its contacts by role, with their scores",
    "eval": "eval ID: CONDITION, e.g. eval c42: score >= 100 and visited pricing",
    "ingest": 'ingest {"contact": "c1", "action": "visited", ...}: score one event now',
    "rules": "the loaded script",
    "add": "add rules typed on the following lines (end with an empty line)",
    "reload": "read the script file again; report what changed among the top accounts",
    "as-of": "as-of TIME|latest: evaluate at another time",
    "load": "load rules FILE | load data DIR (contacts, accounts, events .ndjson)",
    "quit": "leave (also exit, or Ctrl-D)",
}


class Repl:
    """One session: the script, the data, the engine built from them, and the output."""

    def __init__(self, out: TextIO, rules: Path | None = None, data: Path | None = None) -> None:
        self.out = out
        self.rules_path: Path | None = None
        self.source = ""
        self.rules: Ruleset | None = None
        self.data: Path | None = None
        self.typed: list[dict[str, Any]] = []  # events ingested in this session
        self.as_of: float | None = None
        self.engine: Engine | None = None
        with contextlib.redirect_stdout(self.out):
            try:
                if rules is not None:
                    self._load_rules(rules)
                if data is not None:
                    self._load_data(data)
            except ScriptError as exc:
                print(exc)
            except LeadDSLError as exc:
                print(f"error: {exc}")

    # ---- the loop ----------------------------------------------------------------------------

    def run(self, session: PromptSession[str]) -> None:
        """Read commands until quit or end of input."""
        while True:
            try:
                line = session.prompt("leaddsl> ", completer=ReplCompleter(self))
            except KeyboardInterrupt:
                continue
            except EOFError:
                return
            if line.strip() == "add":
                line = "add\n" + "\n".join(self._block(session))
            if not self.execute(line):
                return

    def _block(self, session: PromptSession[str]) -> Iterator[str]:
        while True:
            try:
                text = session.prompt("   ...> ")
            except EOFError:
                return
            if not text.strip():
                return
            yield text

    def execute(self, line: str) -> bool:
        """Run one command; False means quit. Every mistake is printed, never raised."""
        with contextlib.redirect_stdout(self.out):
            try:
                return self._execute(line)
            except ScriptError as exc:
                print(exc)
            except LeadDSLError as exc:
                print(f"error: {exc}")
            return True

    def _execute(self, line: str) -> bool:
        text = line.strip()
        if not text or text.startswith("#"):
            return True
        word, *more = text.split(None, 1)
        rest = more[0].strip() if more else ""
        if word in ("quit", "exit"):
            return False
        handler = getattr(self, "cmd_" + word.replace("-", "_"), None)
        if handler is None or word not in COMMANDS:
            near = suggest(word, COMMANDS)
            hint = f"; did you mean '{near}'?" if near else "; type help"
            raise LeadDSLError(f"unknown command '{word}'{hint}")
        handler(rest)
        return True

    # ---- commands ---------------------------------------------------------------------------

    def cmd_help(self, rest: str) -> None:
        for name, text in COMMANDS.items():
            print(f"  {name:<10} {text}")

    def cmd_load(self, rest: str) -> None:
        what, _, arg = rest.partition(" ")
        if what == "rules" and arg:
            self._load_rules(Path(arg.strip()))
        elif what == "data" and arg:
            self._load_data(Path(arg.strip()))
        else:
            raise LeadDSLError("load rules FILE, or load data DIR")

    def cmd_rules(self, rest: str) -> None:
        if not self.source:
            raise LeadDSLError("no rules loaded; load rules FILE")
        print(self.source.rstrip("\n"))

    def cmd_add(self, rest: str) -> None:
        added = rest.strip("\n")
        if not added.strip():
            raise LeadDSLError("add: type the rules on the lines after 'add', then an empty line")
        source = self.source.rstrip("\n") + "\n\n" + added + "\n"
        rules = compile_script(source, self._filename())
        self.source, self.rules = source, rules
        self._rebuild()
        print(f"added; {len(rules.models)} models, {len(rules.ladders)} ladders")

    def cmd_reload(self, rest: str) -> None:
        if self.rules_path is None:
            raise LeadDSLError("no rules file to reload; load rules FILE")
        before = self._tops()
        self._load_rules(self.rules_path)
        after = self._tops()
        changes = [line for line in _diff(before, after)]
        print("\n".join(changes) if changes else "no change among the top 10")

    def cmd_as_of(self, rest: str) -> None:
        self.as_of = None if rest in ("", "latest") else parse_time(rest, source="as-of",
                                                                    field="time")
        self._rebuild()
        engine = self._engine()
        print(f"as of {engine.as_of.isoformat() if engine.as_of else '-'}")

    def cmd_ingest(self, rest: str) -> None:
        try:
            event = orjson.loads(rest)
        except orjson.JSONDecodeError as exc:
            raise LeadDSLError(f"ingest takes one event as JSON: {exc.msg}") from None
        fired = self._engine().ingest(event, source="ingest")
        self.typed.append(event)
        if not fired:
            print("ingested; nothing crossed a threshold")
        for t in fired:
            print(f"  {t.subject} {t.id}: {t.name} {t.before} -> {t.after}")

    def cmd_top(self, rest: str) -> None:
        head, _, condition = rest.partition(" where ")
        words = head.split()
        if not words or words[0] not in ("accounts", "contacts"):
            raise LeadDSLError("top accounts|contacts [N] [where CONDITION]")
        n = 10
        if len(words) > 1:
            if not words[1].isdigit():
                raise LeadDSLError(f"top takes a number of rows, got {words[1]!r}")
            n = int(words[1])
        engine = self._engine()
        accounts = words[0] == "accounts"
        if condition.strip():
            engine = self._engine_for(condition, accounts)
            keep = where(engine.rules, condition, accounts=accounts, filename="where")
        else:
            keep = None
        rows = (engine.top_accounts(n, where=keep) if accounts
                else engine.top_contacts(n, where=keep))
        from .cli import _render

        print(_render(rows, "table").rstrip("\n"))

    def cmd_show(self, rest: str) -> None:
        from .cli import _summary

        for result in self._find(rest):
            _summary(result)

    def cmd_why(self, rest: str) -> None:
        from .cli import _points_and_missing, _summary

        for result in self._find(rest):
            _summary(result)
            _points_and_missing(result)

    def cmd_committee(self, rest: str) -> None:
        engine = self._engine()
        aid = rest.strip()
        if not engine.graph.has_account(aid):
            raise LeadDSLError(f"no account {aid!r}" + self._near(aid, engine.account_ids()))
        account = engine.account(aid)
        print(f"{aid}: {account.total:.1f} points, " + ", ".join(
            f"{k} {v}" for k, v in account.labels.items()))
        for role, members in sorted(engine.graph.committee(aid).items(),
                                    key=lambda kv: (kv[0] is None, kv[0] or "")):
            print(f"  {role or '(no role)'}")
            for cid in sorted(members, key=lambda c: -engine.contact(c).total):
                r = engine.contact(cid)
                flag = ("  disqualified: " + ", ".join(r.reasons) if r.disqualified
                        else "  qualified" if r.qualified else "")
                labels = " ".join(r.labels.values())
                print(f"    {cid:<8} {r.total:>7.1f}  {labels}{flag}")

    def cmd_eval(self, rest: str) -> None:
        ident, sep, condition = rest.partition(":")
        if not sep or not condition.strip():
            raise LeadDSLError("eval ID: CONDITION")
        ident = ident.strip()
        engine = self._engine()
        accounts = engine.graph.has_account(ident) and not engine.graph.has_contact(ident)
        engine = self._engine_for(condition, accounts)
        test = where(engine.rules, condition, accounts=accounts, filename="eval")
        found = self._find(ident, engine)
        print("true" if test(found[0]) else "false")

    # ---- helpers --------------------------------------------------------------------------

    def _filename(self) -> str:
        return str(self.rules_path) if self.rules_path is not None else "<repl>"

    def _load_rules(self, path: Path) -> None:
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise LeadDSLError(f"cannot read {str(path)!r}: {exc.strerror}") from None
        rules = compile_script(source, str(path))
        self.rules_path, self.source, self.rules = path, source, rules
        self._rebuild()
        print(f"rules {path}: {len(rules.models)} models, {len(rules.ladders)} ladders"
              + (", an account block" if rules.accounts is not None else ""))

    def _load_data(self, folder: Path) -> None:
        if not (folder / "contacts.ndjson").is_file():
            raise LeadDSLError(f"{str(folder)!r} has no contacts.ndjson")
        self.data = folder
        self._rebuild()
        engine = self._engine()
        print(f"data {folder}: {len(engine.contact_ids())} contacts, "
              f"{len(engine.account_ids())} accounts, {engine.events} events"
              + (f"; {len(engine.rejected)} records set aside" if engine.rejected else ""))

    def _rebuild(self, rules: Ruleset | None = None) -> Engine | None:
        """A fresh engine over the session's rules, data and typed events."""
        rules = rules or self.rules
        if rules is None:
            return None
        engine = Engine(rules, as_of=self.as_of, auto_contacts=True)
        if self.data is not None:
            accounts, contacts, events = (self.data / f"{n}.ndjson"
                                          for n in ("accounts", "contacts", "events"))
            engine.load(
                accounts=accounts if accounts.is_file() else (),
                contacts=contacts,
                events=events if events.is_file() else (),
                errors="collect",
            )
        for event in self.typed:
            engine.ingest(event, source="ingest")
        if rules is self.rules:
            self.engine = engine
        return engine

    def _engine(self) -> Engine:
        if self.engine is None:
            raise LeadDSLError("no rules loaded; load rules FILE")
        return self.engine

    def _engine_for(self, condition: str, accounts: bool) -> Engine:
        """The session's engine, or one that counts events the condition tests."""
        engine = self._engine()
        test = where(engine.rules, condition, accounts=accounts, filename="where")
        if test.rules is engine.rules:
            return engine
        built = self._rebuild(test.rules)
        assert built is not None
        return built

    def _find(self, ident: str, engine: Engine | None = None) -> list[Any]:
        engine = engine or self._engine()
        ident = ident.strip()
        found: list[Any] = []
        if engine.graph.has_contact(ident):
            found.append(engine.contact(ident))
        if engine.graph.has_account(ident) and engine.rules.accounts is not None:
            found.append(engine.account(ident))
        if not found:
            ids = engine.contact_ids() + engine.account_ids()
            raise LeadDSLError(f"no contact or account {ident!r}" + self._near(ident, ids))
        return found

    @staticmethod
    def _near(word: str, names: Iterable[str]) -> str:
        near = suggest(word, list(names))
        return f"; did you mean '{near}'?" if near else ""

    def _tops(self) -> list[tuple[str, float, str]]:
        engine = self._engine()
        if engine.rules.accounts is not None:
            rows: list[Any] = engine.top_accounts(10)
        else:
            rows = engine.top_contacts(10)
        return [(r.id, r.total, " ".join(r.labels.values())) for r in rows]


def _diff(before: list[tuple[str, float, str]], after: list[tuple[str, float, str]]
          ) -> Iterator[str]:
    old = {rid: (rank, total, labels) for rank, (rid, total, labels) in enumerate(before, 1)}
    new_ids = {rid for rid, _, _ in after}
    for rank, (rid, total, labels) in enumerate(after, 1):
        if rid not in old:
            yield f"  #{rank} {rid}: new in the top 10 ({total:.1f}, {labels})"
            continue
        was_rank, was_total, was_labels = old[rid]
        if (was_rank, round(was_total, 1), was_labels) != (rank, round(total, 1), labels):
            yield (f"  #{rank} {rid}: {was_total:.1f} -> {total:.1f}"
                   + (f", was #{was_rank}" if was_rank != rank else "")
                   + (f", {was_labels} -> {labels}" if was_labels != labels else ""))
    for rid, (rank, total, _labels) in old.items():
        if rid not in new_ids:
            yield f"  {rid} left the top 10 (was #{rank}, {total:.1f})"


class ReplCompleter(Completer):
    """Commands first; then contact and account ids, model and ladder names."""

    def __init__(self, repl: Repl) -> None:
        self.repl = repl

    def get_completions(self, document: Document, complete_event: CompleteEvent
                        ) -> Iterator[Completion]:
        text = document.text_before_cursor
        word = document.get_word_before_cursor(WORD=True)
        if " " not in text.lstrip():
            pool: Iterable[str] = COMMANDS
        else:
            pool = self._words(text.split()[0])
        for candidate in sorted(set(pool)):
            if candidate.startswith(word) and candidate != word:
                yield Completion(candidate, start_position=-len(word))

    def _words(self, command: str) -> list[str]:
        engine = self.repl.engine
        if command == "top":
            words = ["accounts", "contacts", "where"]
        elif command in ("load",):
            return ["rules", "data"]
        else:
            words = []
        if engine is None:
            return words
        if command in ("show", "why", "eval", "committee"):
            words += engine.account_ids() if command == "committee" else (
                engine.contact_ids() + engine.account_ids())
        rules = engine.rules
        words += [*rules.models, *rules.ladders, "score", "qualified", "disqualified"]
        if rules.accounts is not None:
            words += [*rules.accounts.models, *rules.accounts.ladders]
        return words

