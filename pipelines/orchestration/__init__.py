"""Orchestrators for kore-sessions, each an optional extra, over one orchestrator-free core.

`partitions`: which bots each partition loads, its pipeline and settings (`[orchestration]`),
loading one partition and building the models once after all; it imports no orchestrator, so
a Dagster job and an Airflow DAG call the same functions. `dagster_defs` (extra `dagster`):
one asset per partition, loaded in parallel and retried on its own, then the SQL models once.
Importing this package or `partitions` needs no orchestrator; importing `dagster_defs` needs
`pip install "kore-sessions[dagster]"`.
"""
