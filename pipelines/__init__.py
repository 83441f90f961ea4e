"""kore-sessions: Kore.ai bot sessions into a warehouse, and their containment metrics.

The installed package's layers, each importing only those below it (docs/architecture.md):
`cli` (commands) and `orchestration` (partitions, Dagster) over `report`, `warehouse` and
`runtime`, over `output` (what a person reads) and `source` (the dlt source); `sql` holds the
models, `sandbox` the Kore-compatible API of the demo and the tests.
"""
