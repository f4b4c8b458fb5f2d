"""leaddsl: lead and account scoring as code.

    import leaddsl
    rules = leaddsl.compile(text, filename="rules.lead")
    result = rules.score(contact, events)
    result.total, result.labels["band"], result.qualified, result.explain()
"""

from .diagnostics import Diagnostic
from .errors import CheckError, GraphError, LeadDSLError, ParseError, RecordError, ScriptError
from .results import Check, ContactResult, Contribution, QualifyCheck
from .ruleset import Ruleset
from .script import check, compile, load

__all__ = [
    "compile", "check", "load", "Ruleset", "ContactResult", "Contribution", "Check",
    "QualifyCheck", "Diagnostic", "LeadDSLError", "ScriptError", "ParseError", "CheckError",
    "RecordError", "GraphError",
]
__version__ = "0.1.0"
