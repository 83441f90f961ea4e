"""How a resource states its tables once: columns (API field, column, Arrow and dlt type) and
child tables, from which the column hints, the Arrow schemas and the SQL stand-ins follow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

# Timestamps are kept to the microsecond, in UTC.
TIMESTAMP = pa.timestamp("us", tz="UTC")
# SQL type of each dlt type, for stand-ins of tables dlt has not created yet (DuckDB dialect).
SQL_TYPES = {"text": "VARCHAR", "bigint": "BIGINT", "bool": "BOOLEAN", "timestamp": "TIMESTAMPTZ"}


@dataclass(frozen=True)
class Column:
    """One column of a table the source loads.

    Attributes:
        name: The column in the warehouse (snake_case).
        api_field: The field of the API's record it comes from; None when the source makes it.
        arrow: Its Arrow type.
        dlt_type: Its dlt data type.
        nullable: Whether it may be NULL.
        hints: Further dlt column hints.
    """

    name: str
    api_field: str | None
    arrow: pa.DataType
    dlt_type: str
    nullable: bool = True
    hints: tuple[tuple[str, Any], ...] = ()

    def dlt_hint(self) -> dict[str, Any]:
        """The column's dlt hint."""
        hint: dict[str, Any] = {"data_type": self.dlt_type, **dict(self.hints)}
        if not self.nullable:
            hint["nullable"] = False
        return hint


@dataclass(frozen=True)
class ChildTable:
    """A list of each record that becomes a table of its own, one row per item.

    Attributes:
        key: The list's key in a row of the resource's record transform.
        api_path: Where the list is in the API's record.
        columns: The typed columns of an item.
        parent: The table of the records the items belong to.
    """

    key: str
    api_path: tuple[str, ...]
    columns: tuple[Column, ...]
    parent: str

    @property
    def table(self) -> str:
        """The dlt table name: nested under its parent."""
        return f"{self.parent}__{self.key}"


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    """The Arrow schema of some columns, in order."""
    return pa.schema([pa.field(c.name, c.arrow, nullable=c.nullable) for c in columns])


def dlt_columns(columns: Sequence[Column]) -> dict[str, dict[str, Any]]:
    """The dlt column hints of some columns."""
    return {column.name: column.dlt_hint() for column in columns}


def sql_columns(
    root: str, columns: Sequence[Column], children: Sequence[ChildTable]
) -> dict[str, dict[str, str]]:
    """The SQL columns of a root table and each of its child tables (dlt makes a table only once
    an item arrives, and a column only once a value does)."""
    tables = {root: tuple(columns), **{child.table: child.columns for child in children}}
    return {table: {c.name: SQL_TYPES[c.dlt_type] for c in cols} for table, cols in tables.items()}
