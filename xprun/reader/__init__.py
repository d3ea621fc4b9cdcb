"""Reading results: ``Reader(log_dir)``, lazy ``Runs`` selections, the query language."""

from .index import Skipped
from .query import QueryError
from .runs import GroupBy, Reader, ReaderWarning, RunRecord, Runs

__all__ = ["GroupBy", "QueryError", "Reader", "ReaderWarning", "RunRecord", "Runs", "Skipped"]
