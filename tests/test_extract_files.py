"""The extract's Parquet files: uncompressed where the load reads them on this machine (DuckDB,
PostgreSQL), dlt's default elsewhere, and the user's compression wherever they set one.

Each case runs dlt's own extract through `make_pipeline`'s pipeline and reads the files it wrote.
"""

from pathlib import Path

import dlt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kore_sessions.runtime.pipeline import make_pipeline

from .conftest import POSTGRES_DSN

pytestmark = pytest.mark.unit


def extracted_compressions(pipeline: dlt.Pipeline) -> set[str]:
    """The compression of every column of the Parquet files one extract of an Arrow table wrote."""
    table = pa.table({"id": ["a", "b", "c"], "count": [1, 2, 3]})
    pipeline.extract(dlt.resource([table], name="things"), loader_file_format="parquet")
    files = list(Path(pipeline.working_dir).rglob("*.parquet"))
    assert files
    found = set()
    for file in files:
        metadata = pq.ParquetFile(file).metadata
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            found |= {row_group.column(c).compression for c in range(row_group.num_columns)}
    return found


def duckdb_pipeline(folder: Path, name: str = "kore_sessions") -> dlt.Pipeline:
    """The CLI's pipeline into a DuckDB file."""
    return make_pipeline(
        "duckdb", pipelines_dir=folder / name, duckdb_path=folder / "w.duckdb", pipeline_name=name
    )


def test_files_a_local_load_reads_are_not_compressed(tmp_path: Path) -> None:
    assert extracted_compressions(duckdb_pipeline(tmp_path)) == {"UNCOMPRESSED"}
    postgres = make_pipeline(
        dlt.destinations.postgres(credentials=POSTGRES_DSN), pipelines_dir=tmp_path / "pg"
    )
    assert extracted_compressions(postgres) == {"UNCOMPRESSED"}
    assert extracted_compressions(duckdb_pipeline(tmp_path, "partition_a")) == {"UNCOMPRESSED"}


def test_files_another_destination_takes_keep_dlt_default(tmp_path: Path) -> None:
    bucket = dlt.destinations.filesystem(bucket_url=(tmp_path / "bucket").as_uri())
    assert extracted_compressions(make_pipeline(bucket, pipelines_dir=tmp_path / "fs")) == {"SNAPPY"}


def test_the_users_compression_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert extracted_compressions(duckdb_pipeline(tmp_path / "before")) == {"UNCOMPRESSED"}
    monkeypatch.setenv("DATA_WRITER__COMPRESSION", "zstd")
    assert extracted_compressions(duckdb_pipeline(tmp_path / "every")) == {"ZSTD"}
    monkeypatch.delenv("DATA_WRITER__COMPRESSION")
    monkeypatch.setenv("PARTITION_B__DATA_WRITER__COMPRESSION", "gzip")
    assert extracted_compressions(duckdb_pipeline(tmp_path / "own", "partition_b")) == {"GZIP"}
    assert extracted_compressions(duckdb_pipeline(tmp_path / "other", "partition_c")) == {"UNCOMPRESSED"}
