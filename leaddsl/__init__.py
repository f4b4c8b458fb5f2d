"""leaddsl: lead and account scoring as code.

Compile a rule script once with ``compile`` (or ``load`` a file), then score contacts with
``Ruleset.score``, or many at once with ``score_all``; an ``Engine`` holds contacts, accounts
and events and answers for each. Every result can ``explain()`` its points.
"""

from .accounts import AccountResult
from .bulk import Scored, score_all
from .diagnostics import Diagnostic
from .engine import Engine, IngestReport, LoadReport
from .errors import CheckError, GraphError, LeadDSLError, ParseError, RecordError, ScriptError
from .formatter import format
from .graph import AccountGraph
from .records import Rejected
from .results import Check, ContactResult, Contribution, QualifyCheck
from .ruleset import Ruleset
from .script import check, compile, load
from .triggers import Transition

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
]
__version__ = "0.1.0"
