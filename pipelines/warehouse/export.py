"""`kore-sessions export`: write the marts as Parquet or CSV files, streamed in chunks."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet
from kore_sessions.warehouse.model_files import Model, ModelError, discover_models

# File formats `export` writes.
EXPORT_FORMATS = ("parquet", "csv")
# Rows fetched from the warehouse per chunk: bounded memory whatever a mart's size.
EXPORT_CHUNK_ROWS = 50_000
# Arrow type of each warehouse column type (information_schema spelling, lower case); any
# other type is written as text.
ARROW_TYPES: dict[str, pa.DataType] = {
    "date": pa.date32(),
    "bigint": pa.int64(),
    "integer": pa.int64(),
    "double": pa.float64(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "timestamp": pa.timestamp("us"),
    "timestamp without time zone": pa.timestamp("us"),
}


@dataclass(frozen=True)
class ExportedFile:
    """One mart written to one file."""

    mart: str
    path: Path
    rows: int


def export_marts(pipeline: dlt.Pipeline, directory: Path, file_format: str) -> list[ExportedFile]:
    """Write every mart of the pipeline's dataset to `directory/<mart>.<format>`.

    Each file is written under a temporary name and renamed when complete, so a failed
    export never leaves a truncated file behind.

    Args:
        pipeline: The pipeline whose dataset holds the built models.
        directory: Output folder (created if missing); files of the same name are replaced.
        file_format: "parquet" or "csv".

    Returns:
        The files written, one per mart.

    Raises:
        ModelError: The marts are not built in the dataset.
        ValueError: Unknown format.
    """
    if file_format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {file_format!r}: use {' or '.join(EXPORT_FORMATS)}")
    marts = [model for model in discover_models() if model.layer == "marts"]
    written = []
    with pipeline.sql_client() as client:
        schemas = {mart.name: mart_schema(client, mart.name) for mart in marts}
        missing = [name for name, schema in schemas.items() if schema is None]
        if missing:
            raise ModelError(
                f"the marts are not built in dataset {client.dataset_name} (missing {missing[0]}): "
                "run `kore-sessions models` first"
            )
        directory.mkdir(parents=True, exist_ok=True)
        for mart in marts:
            path = directory / f"{mart.name}.{file_format}"
            rows = _write_mart(client, mart, schemas[mart.name], path, file_format)
            written.append(ExportedFile(mart=mart.name, path=path.resolve(), rows=rows))
    return written


def mart_schema(client: Any, table: str) -> pa.Schema | None:
    """The Arrow schema of a table from the warehouse's column types, or None if there is none."""
    rows = client.execute_sql(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        client.dataset_name,
        table,
    )
    if not rows:
        return None
    return pa.schema([(str(name), ARROW_TYPES.get(str(kind).lower(), pa.string())) for name, kind in rows])


def _write_mart(client: Any, mart: Model, schema: pa.Schema, path: Path, file_format: str) -> int:
    """Stream one mart, ordered by its grain, into one file; return its row count."""
    order = ", ".join(client.escape_column_name(key) for key in mart.grain)
    query = f"SELECT * FROM {client.make_qualified_table_name(mart.name)} ORDER BY {order}"
    partial = path.with_name(path.name + ".partial")
    writer = _open_writer(partial, schema, file_format)
    rows = 0
    try:
        for chunk in _chunks(client, query, schema):
            writer.write_table(chunk)
            rows += chunk.num_rows
    finally:
        writer.close()
    partial.replace(path)
    return rows


def _chunks(client: Any, query: str, schema: pa.Schema) -> Iterator[pa.Table]:
    """The query's rows as Arrow tables of `schema`, EXPORT_CHUNK_ROWS at a time."""
    if _is_psycopg2(client.native_connection):
        yield from _server_side_chunks(client.native_connection, query, schema)
        return
    with client.execute_query(query) as cursor, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # DuckDB's note on the extra Arrow copy
        for chunk in cursor.iter_arrow(EXPORT_CHUNK_ROWS):
            yield chunk.rename_columns(schema.names).cast(schema)


def _server_side_chunks(connection: Any, query: str, schema: pa.Schema) -> Iterator[pa.Table]:
    """Chunks through a PostgreSQL server-side cursor (psycopg2 otherwise reads every row)."""
    with connection.cursor(name="kore_sessions_export", withhold=True) as cursor:
        cursor.itersize = EXPORT_CHUNK_ROWS
        cursor.execute(query)
        while rows := cursor.fetchmany(EXPORT_CHUNK_ROWS):
            columns = list(zip(*rows, strict=True))
            yield pa.table(
                [pa.array(values, type=field.type) for values, field in zip(columns, schema, strict=True)],
                schema=schema,
            )


def _is_psycopg2(connection: Any) -> bool:
    """Whether a native connection is psycopg2's."""
    return type(connection).__module__.startswith("psycopg2")


def _open_writer(path: Path, schema: pa.Schema, file_format: str) -> Any:
    """A Parquet or CSV writer for `schema`."""
    if file_format == "parquet":
        return pa_parquet.ParquetWriter(path, schema)
    return pa_csv.CSVWriter(path, schema)
