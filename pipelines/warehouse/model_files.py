"""The SQL model files in `sql/`: found as package data, parsed, ordered by their own references.

Models are written once, in DuckDB's dialect, one `SELECT` per file under a header comment
stating its grain; the build order comes from the tables each query reads.
"""

from __future__ import annotations

import graphlib
import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

import sqlglot
from kore_sessions.output.failures import ActionableError
from sqlglot import exp

# Where the model files live: `<layer>/<model name>.sql` in the package `kore_sessions.sql`
# (the repository's `sql/`), read as package data so an installed wheel finds them too.
SQL_DIR = files("kore_sessions.sql")
# Dialect the model files are written in.
MODEL_DIALECT = "duckdb"
# How each layer is materialized: staging only renames and casts, so a view costs nothing;
# intermediate models are read by several marts in the same build, so they are computed once
# (as a view, each mart reading one would compute it again); marts are what BI tools query.
LAYER_MATERIALIZATION = {"staging": "VIEW", "intermediate": "TABLE", "marts": "TABLE"}
# The header comment of a model states its grain, keys in parentheses: "-- Grain: ... (day, bot_id)".
GRAIN_PATTERN = re.compile(r"Grain:[^(]*\(([^)]*)\)", re.DOTALL)



class ModelError(ActionableError):
    """A model file is wrong (bad SQL, unknown layer, a cycle) or the warehouse lacks its input."""


@dataclass(frozen=True)
class Model:
    """One model file: its name, layer, parsed query and the tables it reads."""

    name: str
    layer: str
    path: Traversable
    query: exp.Query
    reads: frozenset[str]
    grain: tuple[str, ...]

    @property
    def materialization(self) -> str:
        """VIEW or TABLE."""
        return LAYER_MATERIALIZATION[self.layer]


def discover_models(sql_dir: Traversable = SQL_DIR) -> list[Model]:
    """Every model under `sql_dir`, in build order (each after the models it reads).

    Args:
        sql_dir: The folder holding one sub-folder per layer (`staging/`, `intermediate/`,
            `marts/`).

    Returns:
        The models, dependencies first.

    Raises:
        ModelError: No model file is there (an install without its package data), a file
            does not parse, a name is used twice, or models read each other in a cycle.
    """
    found: dict[str, Model] = {}
    for layer in LAYER_MATERIALIZATION:
        folder = sql_dir / layer
        paths = sorted(folder.iterdir(), key=lambda item: item.name) if folder.is_dir() else []
        for path in (item for item in paths if item.name.endswith(".sql")):
            model = _parse_model(path, layer)
            if model.name in found:
                raise ModelError(f"model {model.name} is defined twice: {found[model.name].path} and {path}")
            found[model.name] = model
    if not found:
        raise ModelError(f"no model file under {sql_dir}: the package was installed without its SQL")
    graph = {name: {ref for ref in model.reads if ref in found} for name, model in found.items()}
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise ModelError(f"models read each other in a cycle: {' -> '.join(exc.args[1])}") from None
    return [found[name] for name in order]


def _parse_model(path: Traversable, layer: str) -> Model:
    """Parse one file into a model; it must hold exactly one query."""
    try:
        statements = [s for s in sqlglot.parse(path.read_text(encoding="utf-8"), read=MODEL_DIALECT) if s]
    except sqlglot.errors.ParseError as exc:
        raise ModelError(f"{path}: not valid SQL: {' '.join(str(exc).split())}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ModelError(f"{path}: a model file holds exactly one SELECT query")
    query = statements[0]
    grain = _grain_keys(path)
    return Model(path.stem, layer, path, query, frozenset(_tables_read(query)), grain)


def _grain_keys(path: Traversable) -> tuple[str, ...]:
    """The key columns the header comment's `Grain:` line names."""
    header = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        header.append(line.removeprefix("--").strip())
    match = GRAIN_PATTERN.search(" ".join(header))
    if not match:
        raise ModelError(f"{path}: the file must start with a comment `-- Grain: ... (key, ...)`")
    return tuple(key.strip() for key in match.group(1).split(","))


def _tables_read(query: exp.Expression) -> set[str]:
    """Names of the tables a query reads, without its own CTEs."""
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    return {table.name for table in query.find_all(exp.Table) if table.name not in ctes}
