"""What a PostgreSQL dataset holds, read for the tests: record ids, and keys held twice."""

from __future__ import annotations

import psycopg2

from .conftest import POSTGRES_DSN


def postgres_ids(dataset: str, table: str = "sessions", key: str = "session_id") -> list[str]:
    """The record ids of a PostgreSQL dataset's table."""
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT {key} FROM "{dataset}".{table}')
        ids = [row[0] for row in cursor.fetchall()]
    connection.close()
    return ids


def postgres_rows_twice(dataset: str, tables: dict[str, str]) -> dict[str, int]:
    """Per table of a PostgreSQL dataset (by name, with its key), how many rows repeat a key."""
    twice: dict[str, int] = {}
    with psycopg2.connect(POSTGRES_DSN) as connection, connection.cursor() as cursor:
        for table, key in tables.items():
            cursor.execute(f'SELECT COUNT(*) - COUNT(DISTINCT {key}) FROM "{dataset}".{table}')
            twice[table] = cursor.fetchone()[0]
    connection.close()
    return twice
