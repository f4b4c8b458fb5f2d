"""The rule script compiled to SQL: sqlglot expression trees built from the Plan.

``compiler`` turns a contact plan into one query (``contact_query``); ``to_sql`` renders it for
a dialect. The batch backend (leaddsl.batch) runs it on DuckDB, leaddsl.spark on Spark.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import LeadDSLError

__all__ = ["require", "MissingExtra"]


class MissingExtra(LeadDSLError):
    """An optional backend was asked for and its packages are not installed."""


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or fail with one line naming the pip install to run."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f"this needs the '{module}' package: pip install 'leaddsl[{extra}]'"
        ) from None
