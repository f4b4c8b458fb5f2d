"""leaddsl: lead and account scoring as code.

Compile a rule script once with ``compile`` (or ``load`` a file), then score contacts with
``Ruleset.score``, or many at once with ``score_all``; an ``Engine`` holds contacts, accounts
and events and answers for each. Every result can ``explain()`` its points.

The closed loop (docs/closed-loop.md): ``read_outcomes`` validates what sales reported back; a
``History`` of records and outcomes is re-scored under a script by ``History.backtest``, each
outcome as of just before it; ``report`` measures what each segment and rule predicts,
``diff`` compares two scripts on the same history, and ``tune`` fits the points to the
outcomes. (The functions ``report``, ``diff`` and ``tune`` share their modules' names; the
modules stay importable as ``leaddsl.report`` etc. with ``from leaddsl.report import ...``.)
"""

from .accounts import AccountResult
from .backtest import Backtest, Case, History
from .bulk import Scored, score_all
from .diagnostics import Diagnostic
from .diff import RuleDiff, diff
from .engine import Engine, IngestReport, LoadReport
from .errors import CheckError, GraphError, LeadDSLError, ParseError, RecordError, ScriptError
from .formatter import format
from .graph import AccountGraph
from .outcomes import Outcome, Outcomes, read_outcomes
from .records import Rejected
from .report import OutcomeReport, report
from .results import Check, ContactResult, Contribution, QualifyCheck
from .ruleset import Ruleset
from .script import check, compile, load
from .triggers import Transition
from .tune import Tuned, tune

__all__ = [
    "compile",
    "check",
    "load",
    "format",
    "score_all",
    "Engine",
    "LoadReport",
    "IngestReport",
    "Transition",
    "AccountGraph",
    "AccountResult",
    "Scored",
    "Ruleset",
    "ContactResult",
    "Contribution",
    "Check",
    "QualifyCheck",
    "Diagnostic",
    "LeadDSLError",
    "ScriptError",
    "ParseError",
    "CheckError",
    "RecordError",
    "GraphError",
    "Rejected",
    "read_outcomes",
    "Outcome",
    "Outcomes",
    "History",
    "Backtest",
    "Case",
    "report",
    "OutcomeReport",
    "diff",
    "RuleDiff",
    "tune",
    "Tuned",
]
__version__ = "0.1.0"
