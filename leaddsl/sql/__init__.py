"""The rule script compiled to SQL: sqlglot expression trees built from the Plan.

``compiler`` turns a contact plan into one query (``ContactSQL``), ``accounts`` the account
block into the account query over its rows (``AccountSQL``), ``warehouse`` renders both for a
dialect (``Ruleset.to_sql``). leaddsl.batch runs them on DuckDB, leaddsl.spark on Spark.
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
