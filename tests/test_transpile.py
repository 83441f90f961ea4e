"""Every model transpiles to the warehouses that are not tested live, and parses back.

Only DuckDB and PostgreSQL run the models in the suite; for BigQuery, Snowflake, Databricks and
Redshift the suite proves what sqlglot can: each model is written in that dialect with no
construct sqlglot calls unsupported, the statement parses back in the dialect, and it still
reads the same tables.
"""

from __future__ import annotations

import pytest
import sqlglot
from kore_sessions.warehouse.model_files import Model, discover_models
from kore_sessions.warehouse.models import OPTIONAL_SOURCE_TABLES, render_model, source_stand_ins
from sqlglot import exp
from sqlglot.errors import ErrorLevel

pytestmark = pytest.mark.unit

# Warehouses dlt loads into whose SQL the models are only transpiled to, not run on.
TRANSPILED_ONLY = ("bigquery", "snowflake", "databricks", "redshift")
SCHEMA = "kore_sessions"
MODELS = discover_models()


def tables_read(statement: exp.Expression) -> set[str]:
    """Names of the tables a statement reads, CTEs aside."""
    ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
    return {table.name for table in statement.find_all(exp.Table)} - ctes


@pytest.mark.parametrize("dialect", TRANSPILED_ONLY)
@pytest.mark.parametrize("model", MODELS, ids=[model.name for model in MODELS])
def test_the_model_transpiles_and_parses_back(model: Model, dialect: str) -> None:
    model.query.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
    present = {table: set(columns) for table, columns in OPTIONAL_SOURCE_TABLES.items()}
    rendered = render_model(model, dialect, SCHEMA, source_stand_ins(present, SCHEMA))
    parsed = sqlglot.parse_one(rendered, read=dialect)
    assert isinstance(parsed, exp.Create)
    assert tables_read(parsed.expression) == tables_read(model.query), "reads the same tables"
