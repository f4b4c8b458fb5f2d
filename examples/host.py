"""A small host application: an HTTP service that scores events live and logs the triggers.

    .venv/bin/python examples/host.py [--port 8080] [--store state.db]

It loads examples/rules.lead with the example accounts and contacts, then serves (standard
library only, JSON in and out):

    POST /events              one event or a list of them; answers the transitions they caused
    GET  /contacts/ID         a contact's scores, labels and explanation
    GET  /accounts/ID         an account's, with the contacts behind its points
    GET  /top?n=10            the best accounts
    GET  /transitions         every transition since the service started

Every transition (a contact or account qualifying, losing it, changing band or tier) is also
logged on stderr, which is where a real host would start a nurture flow or alert sales. A bad
event gets a 400 answer naming the field; the service carries on. With --store the state lives
in a SQLite file and survives restarts. It prints "listening on http://HOST:PORT" when ready.
"""

from __future__ import annotations

import argparse
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson

import leaddsl

HERE = Path(__file__).resolve().parent


class Scoring:
    """The engine behind the service; one lock, as an Engine is not meant for two writers."""

    def __init__(self, store: str | None) -> None:
        self.engine = leaddsl.Engine(leaddsl.load(HERE / "rules.lead"), store=store,
                                     auto_contacts=True)
        if not self.engine.graph.accounts():
            self.engine.load(accounts=HERE / "data" / "accounts.ndjson",
                             contacts=HERE / "data" / "contacts.ndjson")
        self.lock = threading.Lock()
        self.log: list[leaddsl.Transition] = []
        for kind in ("qualified", "disqualified", "label_changed"):
            self.engine.on(kind, self.record)

    def record(self, t: leaddsl.Transition) -> None:
        self.log.append(t)
        print(f"trigger: {t.subject} {t.id} {t.name} {t.before} -> {t.after} "
              f"(event {t.cause})", file=sys.stderr, flush=True)


def _result(r: Any) -> dict[str, Any]:
    data: dict[str, Any] = r.to_dict()
    data["explain"] = [
        {"points": c.points, "model": c.model, "rule": c.rule, "account": c.account,
         "contacts": [list(p) for p in c.contacts], "events": list(c.events)}
        for c in r.explain()
    ]
    return data


def handler(scoring: Scoring) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: object) -> None:
            payload = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the triggers are the log that matters here

        def do_POST(self) -> None:  # noqa: N802 - the http.server convention
            if self.path != "/events":
                return self._send(404, {"error": f"no such endpoint {self.path}"})
            size = int(self.headers.get("Content-Length") or 0)
            try:
                body = orjson.loads(self.rfile.read(size))
            except orjson.JSONDecodeError as exc:
                return self._send(400, {"error": f"not JSON: {exc.msg}"})
            events = body if isinstance(body, list) else [body]
            with scoring.lock:
                try:
                    report = scoring.engine.ingest_many(events, errors="collect")
                except leaddsl.LeadDSLError as exc:
                    return self._send(400, {"error": str(exc)})
            rejected = [{"source": r.source, "reason": r.reason} for r in report.rejected]
            self._send(400 if rejected and not report.events else 200, {
                "events": report.events, "duplicates": report.duplicates, "rejected": rejected,
                "transitions": [t.to_dict() for t in report.transitions]})

        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            parts = [p for p in url.path.split("/") if p]
            with scoring.lock:
                try:
                    if len(parts) == 2 and parts[0] == "contacts":
                        return self._send(200, _result(scoring.engine.contact(parts[1])))
                    if len(parts) == 2 and parts[0] == "accounts":
                        return self._send(200, _result(scoring.engine.account(parts[1])))
                    if parts == ["top"]:
                        n = int(parse_qs(url.query).get("n", ["10"])[0])
                        return self._send(200, [a.to_dict()
                                                for a in scoring.engine.top_accounts(n)])
                    if parts == ["transitions"]:
                        return self._send(200, [t.to_dict() for t in scoring.log])
                except leaddsl.LeadDSLError as exc:
                    return self._send(404, {"error": str(exc)})
                except ValueError:
                    return self._send(400, {"error": "n must be a whole number"})
            self._send(404, {"error": f"no such endpoint {url.path}"})

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    ap.add_argument("--store", help="a SQLite file to keep the state in")
    args = ap.parse_args()
    scoring = Scoring(args.store)
    server = ThreadingHTTPServer((args.host, args.port), handler(scoring))
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        scoring.engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
