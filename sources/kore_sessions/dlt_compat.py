"""One fix to dlt 1.31 that the Arrow path needs, applied once, in one place.

dlt groups extract metrics by `schema.get_table(name)["resource"]`, which nested tables never
have, so an item written straight into a nested table (an Arrow child table marked with
`parent_table_name`) fails with `KeyError: 'resource'`. While the metrics are computed, each
nested table borrows its root table's resource; nothing is stored in the schema.
"""

from __future__ import annotations

from typing import Any

from dlt.common.schema.utils import get_root_table, is_nested_table
from dlt.extract.extract import Extract

_PATCHED = "_kore_sessions_nested_metrics"


def lend_resource_to_nested_tables() -> None:
    """Patch `Extract._compute_metrics` (idempotent)."""
    original = Extract._compute_metrics
    if getattr(original, _PATCHED, False):
        return

    def compute_metrics(self: Extract, load_id: str, source: Any) -> Any:
        tables = source.schema.tables
        lent = [table for table in tables.values() if is_nested_table(table) and "resource" not in table]
        for table in lent:
            table["resource"] = get_root_table(tables, table["name"]).get("resource")
        try:
            return original(self, load_id, source)
        finally:
            for table in lent:
                table.pop("resource", None)

    setattr(compute_metrics, _PATCHED, True)
    Extract._compute_metrics = compute_metrics  # type: ignore[method-assign]
