"""The SQL models in `sql/`: discover them, order them by their own references, build them.

Models are written once, in DuckDB's dialect, one `SELECT` per file. Staging models become
views; intermediate models and marts become tables. sqlglot reads each file, finds the tables
it reads (so the build order comes from the SQL itself), qualifies them with the dataset's
schema and writes the statement in the destination's dialect; dlt's SQL client runs it, in one
transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources.abc import Traversable
from typing import Any

import dlt
from dlt.destinations.exceptions import DatabaseException
from kore_sessions.source.messages.message_columns import messages_sql_columns
from kore_sessions.source.sessions.schema import source_sql_columns
from kore_sessions.source.sessions.spec import SESSIONS_TABLE
from kore_sessions.warehouse.build_memory import BuildMemory, out_of_memory
from kore_sessions.warehouse.dataset import dataset_exists, existing_relations, has_sql_warehouse
from kore_sessions.warehouse.duckdb_settings import settings_for_models
from kore_sessions.warehouse.model_files import (
    MODEL_DIALECT,
    SQL_DIR,
    Model,
    ModelError,
    discover_models,
)
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.personal_data import SQL_NAME_PATTERN, SQL_VALUE_PATTERN
from kore_sessions.warehouse.turn import warehouse_turn
from sqlglot import exp

# The one-row table of the settings the models read; written by `build_models` before them.
SETTINGS_TABLE = "kore_model_settings"
# The source's tables, which dlt only creates once an item arrives (no session loaded yet, no
# tag ever, no message while the messages resource is off), and their columns (dlt only adds a
# column once a value arrives): see `source_stand_ins`.
OPTIONAL_SOURCE_TABLES: dict[str, dict[str, str]] = {**source_sql_columns(), **messages_sql_columns()}


@dataclass
class BuildResult:
    """What `build_models` made (and, on DuckDB, the memory limit it was built under, unless the
    user's)."""

    models: list[Model] = field(default_factory=list)
    settings: ModelSettings = field(default_factory=ModelSettings)
    seconds: float = 0.0
    dialect: str = MODEL_DIALECT
    memory_limit_mb: int | None = None

    def lines(self) -> list[str]:
        """The build as short human-readable lines."""
        views = sum(1 for model in self.models if model.materialization == "VIEW")
        return [
            f"models: {len(self.models)} built ({views} views, {len(self.models) - views} tables) "
            f"in {self.seconds:.1f} s, {self.dialect} dialect",
            f"counted: {self.settings.describe()}",
        ]


def render_model(
    model: Model,
    dialect: str,
    schema: str,
    stand_ins: Mapping[str, exp.Select] | None = None,
) -> str:
    """The model's `CREATE` statement in `dialect`, every table it reads qualified by `schema`.

    Args:
        model: The model.
        dialect: sqlglot dialect of the destination (duckdb, postgres, ...).
        schema: The dataset's schema.
        stand_ins: Queries read instead of source tables that are missing or lack columns
            (from `source_stand_ins`), by table name.

    Returns:
        The SQL text.
    """
    stand_ins = stand_ins or {}
    query = model.query.copy()
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    for table in list(query.find_all(exp.Table)):
        if table.name in ctes:
            continue
        if table.name in stand_ins:
            table.replace(stand_ins[table.name].subquery(table.alias_or_name))
        else:
            table.set("db", exp.to_identifier(schema))
    create = exp.Create(
        this=exp.Table(this=exp.to_identifier(model.name), db=exp.to_identifier(schema)),
        kind=model.materialization,
        expression=query,
    )
    return create.sql(dialect=dialect, identify=True)


def source_stand_ins(present: Mapping[str, set[str]], schema: str) -> dict[str, exp.Select]:
    """Stand-ins for optional source tables dlt has not created, or created without a column.

    dlt makes a child table only once an item arrives, and a column only once a value does
    (a tag whose value is always null has no `value` column): such a table is read as an
    empty relation, such a column as NULL.

    Args:
        present: Columns of each table in the dataset, by table name.
        schema: The dataset's schema.

    Returns:
        The stand-in query of each table that needs one.
    """
    stand_ins: dict[str, exp.Select] = {}
    for table, columns in OPTIONAL_SOURCE_TABLES.items():
        have = present.get(table)
        if have is None:
            nulls = [exp.cast(exp.null(), kind).as_(name) for name, kind in columns.items()]
            stand_ins[table] = exp.select(*nulls).where(exp.false())
            continue
        lacking = {name: kind for name, kind in columns.items() if name not in have}
        if lacking:
            nulls = [exp.cast(exp.null(), kind).as_(name) for name, kind in lacking.items()]
            source = exp.Table(this=exp.to_identifier(table), db=exp.to_identifier(schema))
            stand_ins[table] = exp.select(exp.Star(), *nulls).from_(source)
    return stand_ins


def settings_statement(settings: ModelSettings, dialect: str, schema: str, built_at: datetime) -> str:
    """`CREATE TABLE kore_model_settings AS SELECT ...`: the one row the models read.

    One column per setting (`ModelSettings.columns`, in the fields' order). Besides the
    settings it holds the personal-data rule's two patterns
    (`kore_sessions.warehouse.personal_data`), which `int_tags__sliced` reads: they are constants, not
    settings, and are written on every build.
    """
    literals: dict[str, Callable[[Any], exp.Expression]] = {
        "VARCHAR": lambda value: exp.null() if value is None else exp.Literal.string(value),
        "BOOLEAN": lambda value: exp.Boolean(this=value),
        "BIGINT": lambda value: exp.Literal.number(value),
    }
    values = {
        column.name: exp.cast(literals[column.sql_type](value), column.sql_type)
        for column, value in settings.columns()
    }
    values["personal_name_pattern"] = exp.cast(exp.Literal.string(SQL_NAME_PATTERN), "VARCHAR")
    values["personal_value_pattern"] = exp.cast(exp.Literal.string(SQL_VALUE_PATTERN), "VARCHAR")
    values["built_at"] = exp.cast(exp.Literal.string(built_at.isoformat()), "TIMESTAMPTZ")
    query = exp.select(*(value.as_(name) for name, value in values.items()))
    create = exp.Create(
        this=exp.Table(this=exp.to_identifier(SETTINGS_TABLE), db=exp.to_identifier(schema)),
        kind="TABLE",
        expression=query,
    )
    return create.sql(dialect=dialect, identify=True)


def models_unbuildable(pipeline: dlt.Pipeline) -> str | None:
    """Why the models cannot be built on the pipeline's dataset yet, or None when they can.

    Raises:
        Exception: the warehouse's own error when it cannot be read (never taken for "no
            SQL client": a load whose models could not be built must not exit 0).

    A dataset without sessions yet (a bot with none) is built on, over empty stand-ins.
    """
    if not has_sql_warehouse(pipeline):
        return f"destination {pipeline.destination.destination_name} is not a SQL warehouse"
    with warehouse_turn(pipeline):
        loaded = dataset_exists(pipeline)
    return None if loaded else f"nothing loaded into dataset {pipeline.dataset_name} yet"


def build_models(
    pipeline: dlt.Pipeline,
    settings: ModelSettings | None = None,
    sql_dir: Traversable = SQL_DIR,
) -> BuildResult:
    """Build (or rebuild) every model in the pipeline's dataset, in one transaction.

    Args:
        pipeline: A pipeline whose destination has a SQL client (DuckDB, PostgreSQL, ...).
        settings: What the marts count; default: `[models]` from config, else the defaults.
        sql_dir: Folder of the model files.

    Returns:
        The models built, in order, and the time it took.

    Raises:
        ModelError: Nothing is loaded into the dataset yet, or a model is wrong.
    """
    started = time.monotonic()
    settings = settings or ModelSettings.from_config()
    models = discover_models(sql_dir)
    with warehouse_turn(pipeline), pipeline.sql_client() as client:
        dialect = client.capabilities.sqlglot_dialect or MODEL_DIALECT
        schema = client.dataset_name
        if not client.has_dataset():
            raise ModelError(f"no dataset {schema} in the warehouse yet: load sessions first")
        existing = existing_relations(client, schema)
        stand_ins = source_stand_ins(_existing_columns(client, schema), schema)
        statements = _drop_statements(models, existing, dialect, schema)
        statements.append(settings_statement(settings, dialect, schema, datetime.now(UTC)))
        statements += [render_model(model, dialect, schema, stand_ins) for model in models]
        sessions = client.make_qualified_table_name(SESSIONS_TABLE) if SESSIONS_TABLE in existing else None
        with settings_for_models(client, pipeline, sessions) as memory:
            _run_in_one_transaction(client, statements, memory)
    return BuildResult(
        models=models,
        settings=settings,
        seconds=time.monotonic() - started,
        dialect=dialect,
        memory_limit_mb=memory.limit_mb,
    )


def _run_in_one_transaction(client: Any, statements: list[str], memory: BuildMemory) -> None:
    """Run the statements in one transaction; when DuckDB runs out of memory, roll back and run
    them again under a larger limit while `memory` can grow (else the error stands)."""
    while True:
        try:
            with client.begin_transaction():
                for statement in statements:
                    client.execute_sql(statement)
            return
        except DatabaseException as error:
            if not (out_of_memory(error) and memory.raise_limit()):
                raise


def built_settings(pipeline: dlt.Pipeline) -> ModelSettings | None:
    """The settings the models were last built with, or None when they were never built (a
    setting the recorded row predates takes its default)."""
    with pipeline.sql_client() as client:
        if SETTINGS_TABLE not in existing_relations(client, client.dataset_name):
            return None
        table = client.make_qualified_table_name(SETTINGS_TABLE)
        with client.execute_query(f"SELECT * FROM {table}") as cursor:
            names = [column[0] for column in cursor.description]
            row = dict(zip(names, cursor.fetchall()[0], strict=True))
    return ModelSettings.from_columns(row)


def _existing_columns(client: Any, schema: str) -> dict[str, set[str]]:
    """Column names of every table of the schema, by table name."""
    rows = client.execute_sql(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
        schema,
    )
    columns: dict[str, set[str]] = {}
    for table, column in rows or []:
        columns.setdefault(str(table), set()).add(str(column))
    return columns


def _drop_statements(
    models: list[Model], existing: Mapping[str, str], dialect: str, schema: str
) -> list[str]:
    """Drop the settings table and the models that exist, dependants first, by their real kind."""
    statements = []
    for name in [model.name for model in reversed(models)] + [SETTINGS_TABLE]:
        if name not in existing:
            continue
        kind = "VIEW" if existing[name] == "VIEW" else "TABLE"
        drop = exp.Drop(
            this=exp.Table(this=exp.to_identifier(name), db=exp.to_identifier(schema)),
            kind=kind,
            exists=True,
        )
        statements.append(drop.sql(dialect=dialect, identify=True))
    return statements
