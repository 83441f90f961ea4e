"""The sessions' tables as the shared Arrow builder makes them: `sessions` and its three child
tables (`kore_sessions.source.api.arrow_rows`)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from dlt.extract.hints import TResourceHints

from kore_sessions.source.api import arrow_rows
from kore_sessions.source.api.arrow_rows import TableBatches, TableSpec
from kore_sessions.source.sessions.schema import CHILD_TABLES, SESSION_COLUMNS
from kore_sessions.source.sessions.spec import PRIMARY_KEY, SESSIONS_TABLE

__all__ = ["SESSIONS_SPEC", "SESSION_FIELDS", "TableBatches", "page_tables", "table_hints"]

# The sessions' tables: `sessions`, merged on `session_id`, and its child tables.
SESSIONS_SPEC = TableSpec(SESSIONS_TABLE, PRIMARY_KEY, "session", SESSION_COLUMNS, CHILD_TABLES)
# Typed columns of `sessions`, in order (anything else the API sends follows them).
SESSION_FIELDS = SESSIONS_SPEC.fields


def table_hints() -> dict[str, TResourceHints]:
    """dlt hints of each table: `sessions` merged on its key, the child tables nested in it."""
    return arrow_rows.table_hints(SESSIONS_SPEC)


def page_tables(rows: list[dict[str, Any]], load_id: str) -> dict[str, pa.Table]:
    """`sessions` and the non-empty child tables of one page of rows (from `records.to_row`)."""
    return arrow_rows.page_tables(SESSIONS_SPEC, rows, load_id)
