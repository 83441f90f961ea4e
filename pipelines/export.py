"""`kore-sessions export`: write the marts as Parquet or CSV files, streamed in chunks."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet

from .models import Model, ModelError, discover_models

# File formats `export` writes.
EXPORT_FORMATS = ("parquet", "csv")
# Rows fetched from the warehouse per chunk: bounded memory whatever a mart's size.
EXPORT_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class ExportedFile:
    """One mart written to one file."""

    mart: str
    path: Path
    rows: int


def export_marts(pipeline: dlt.Pipeline, directory: Path, file_format: str) -> list[ExportedFile]:
    """Write every mart of the pipeline's dataset to `directory/<mart>.<format>`.

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
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    marts = [model for model in discover_models() if model.layer == "marts"]
    with pipeline.sql_client() as client:
        missing = [mart.name for mart in marts if not _has_table(client, mart.name)]
        if missing:
            raise ModelError(
                f"the marts are not built in dataset {client.dataset_name} (missing {missing[0]}): "
                "run `kore-sessions models` first"
            )
        for mart in marts:
            path = directory / f"{mart.name}.{file_format}"
            rows = _write_mart(client, mart, path, file_format)
            written.append(ExportedFile(mart=mart.name, path=path.resolve(), rows=rows))
    return written


def _has_table(client: Any, name: str) -> bool:
    """Whether the dataset has a table or view of that name."""
    rows = client.execute_sql(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
        client.dataset_name,
        name,
    )
    return bool(rows and rows[0][0])


def _write_mart(client: Any, mart: Model, path: Path, file_format: str) -> int:
    """Stream one mart, ordered by its grain, into one file; return its row count."""
    order = ", ".join(client.escape_column_name(key) for key in mart.grain)
    query = f"SELECT * FROM {client.make_qualified_table_name(mart.name)} ORDER BY {order}"
    writer: Any = None
    rows = 0
    with client.execute_query(query) as cursor, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # DuckDB's note on the extra Arrow copy
        for chunk in cursor.iter_arrow(EXPORT_CHUNK_ROWS):
            writer = writer or _open_writer(path, chunk.schema, file_format)
            writer.write_table(chunk)
            rows += chunk.num_rows
        if writer is None:  # an empty mart still gets a file with its columns
            names = [column[0] for column in cursor.native_cursor.description]
            empty = pa.table({name: pa.array([], pa.null()) for name in names})
            writer = _open_writer(path, empty.schema, file_format)
            writer.write_table(empty)
    writer.close()
    return rows


def _open_writer(path: Path, schema: pa.Schema, file_format: str) -> Any:
    """A Parquet or CSV writer for `schema`."""
    if file_format == "parquet":
        return pa_parquet.ParquetWriter(path, schema)
    return pa_csv.CSVWriter(path, schema)
