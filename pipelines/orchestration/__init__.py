"""Orchestrators for kore-sessions, each an optional extra.

`dagster_defs` (extra `dagster`): one asset per partition of bots, loaded in parallel and
retried on its own, then the SQL models once. Importing this package needs no orchestrator;
importing `dagster_defs` needs `pip install "kore-sessions[dagster]"`.
"""
