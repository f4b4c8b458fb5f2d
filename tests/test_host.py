"""The example host application (examples/host.py), started for real on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

HOST = Path(__file__).resolve().parent.parent / "examples" / "host.py"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    proc = subprocess.Popen([sys.executable, str(HOST), "--port", "0", "--store",
                             str(tmp_path / "state.db")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on http://127.0.0.1:"), proc.stderr and proc.stderr.read()
    yield line.split()[-1], proc
    proc.terminate()
    proc.communicate(timeout=30)


def call(base: str, path: str, body: object = None) -> tuple[int, Any]:
    data = None if body is None else orjson.dumps(body)
    req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


def event(n: int, name: str, action: str = "visited", obj: str = "page") -> dict[str, Any]:
    return {"id": f"live-{n}", "contact": "c201", "action": action, "object": obj, "name": name,
            "at": f"2026-11-0{n}T10:00:00Z"}


def test_events_in_scores_and_triggers_out(service: tuple[str, Any]) -> None:
    base, proc = service
    status, before = call(base, "/contacts/c201")
    assert status == 200
    status, answer = call(base, "/events", [event(1, "pricing"),
                                            event(2, "demo-request", "submitted", "form")])
    assert status == 200 and answer["events"] == 2
    kinds = {(t["kind"], t["id"], t["after"]) for t in answer["transitions"]}
    assert ("qualified", "c201", True) in kinds  # a demo request qualifies on its own
    status, after = call(base, "/contacts/c201")
    assert after["total"] > before["total"] and after["qualified"] is True
    assert sum(row["points"] for row in after["explain"]) == pytest.approx(after["total"])
    # The same events again change nothing and fire nothing.
    status, again = call(base, "/events", [event(1, "pricing")])
    assert (again["events"], again["duplicates"], again["transitions"]) == (0, 1, [])
    # A bad event is refused, naming the field; the service carries on.
    status, bad = call(base, "/events", {"id": "x", "contact": "c201", "at": "2026-11-01"})
    assert status == 400 and "missing action" in bad["rejected"][0]["reason"]
    status, log = call(base, "/transitions")
    assert [t["cause"] for t in log if t["id"] == "c201"] == [
        t["cause"] for t in answer["transitions"] if t["id"] == "c201"]
    status, top = call(base, "/top?n=3")
    assert status == 200 and len(top) == 3
    status, missing = call(base, "/accounts/nope")
    assert status == 404 and "unknown account" in missing["error"]
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert "trigger: contact c201 qualified False -> True (event live-2)" in err
