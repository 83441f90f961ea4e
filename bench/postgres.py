"""The PostgreSQL the benchmark loads into: whether it answers, the rows loaded, a clean schema."""

from __future__ import annotations

import os

# The database of the PostgreSQL part, the one the tests use unless KORE_BENCH_POSTGRES says.
POSTGRES_URL = os.environ.get(
    "KORE_BENCH_POSTGRES",
    os.environ.get("KORE_TEST_POSTGRES_DSN", "postgresql://kore:kore@127.0.0.1:5432/kore_test"),
)
# Seconds to wait for PostgreSQL before the part is skipped.
CONNECT_TIMEOUT = 3


def unreachable(url: str) -> str | None:
    """None when the database answers, else why not (one line)."""
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
    except psycopg2.Error as exc:
        return " ".join(str(exc).split())
    return None


def count_rows(url: str, dataset: str) -> tuple[int, int]:
    """Rows and distinct session ids of ``<dataset>.sessions``."""
    import psycopg2

    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT COUNT(*), COUNT(DISTINCT session_id) FROM "{dataset}".sessions')
        rows, distinct = cursor.fetchone()
    connection.close()
    return int(rows), int(distinct)


def drop_dataset(url: str, dataset: str) -> None:
    """Drop the dataset's schema and dlt's staging schema beside it, if they exist."""
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            for schema in (dataset, f"{dataset}_staging"):
                cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        connection.close()
