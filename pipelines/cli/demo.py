"""`kore-sessions demo`: the whole pipeline against the sandbox API, no credentials or network."""

from __future__ import annotations

import secrets
import shlex
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dlt
from kore_sessions.report import DEFAULT_REPORT_FILE, write_report
from kore_sessions.report.console import recent_containment_lines, top_dropoff_lines
from kore_sessions.runtime.audit import Auditor, AuditRange
from kore_sessions.runtime.pipeline import DEFAULT_DUCKDB_FILE, inspect_command, load_sessions, make_pipeline
from kore_sessions.runtime.summary import LoadSummary
from kore_sessions.sandbox import GeneratedSession, SandboxApp, SandboxServer, generate_sessions
from kore_sessions.source import KoreCredentials, SourceRun, kore_sessions, resolve_options
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import build_models

# Bots of the demo account.
DEMO_BOTS = (
    "st-0a1b2c3d-0000-4000-8000-000000000001",
    "st-0a1b2c3d-0000-4000-8000-000000000002",
    "st-0a1b2c3d-0000-4000-8000-000000000003",
)
# The sandbox caps pages at this size, so the demo shows paging at work.
DEMO_PAGE_CAP = 250
# The sandbox's clock starts this far behind the real clock and moves to it between the demo's
# two runs: the second run loads what the API shows at the real now, so the report's "data as
# of" (the newest load) is after every session it shows.
DEMO_CLOCK_STEP = timedelta(minutes=150)
# Days of the containment table the demo prints at the end.
DEMO_TABLE_DAYS = 7
# Days the demo's audit checks (one request a bot: under 7 days fit one).
DEMO_AUDIT_DAYS = 7
PIPELINES_FOLDER = "pipelines"
# The sandbox's limits last this many seconds a "minute": its backfill of sessions and messages
# asks each bot ~70 times, over Kore.ai's 60 a minute, and the demo should not wait a minute.
DEMO_SECONDS_PER_MINUTE = 6.0


def run_demo(folder: str, days: int = 35, per_day: int = 60) -> int:
    """Generate sessions, serve them on loopback, load twice, and print what was loaded.

    Args:
        folder: Where the DuckDB file and the pipeline state go (made fresh each time).
        days: Days of history the sandbox holds.
        per_day: Sessions per bot and day, on average.

    Returns:
        The exit code, 0.
    """
    target = Path(folder).resolve()
    _reset(target)
    sandbox_now = datetime.now(UTC).replace(microsecond=0) - DEMO_CLOCK_STEP
    sessions = _demo_sessions(sandbox_now, days, per_day)
    client_id, client_secret = f"cs-demo-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    app = SandboxApp(client_id=client_id, client_secret=client_secret, kind="bot")
    credentials = KoreCredentials(client_id=client_id, client_secret=client_secret)
    pipeline = make_pipeline(
        "duckdb", pipelines_dir=target / PIPELINES_FOLDER, duckdb_path=target / DEFAULT_DUCKDB_FILE
    )
    options = {
        "bot_ids": list(DEMO_BOTS),
        "start_date": (sandbox_now - timedelta(days=days)).isoformat(),
        "credentials": credentials,
        "resources": ["sessions", "messages"],
        "seconds_per_minute": DEMO_SECONDS_PER_MINUTE,
    }
    with SandboxServer(sessions, apps=[app], now=sandbox_now, page_cap=DEMO_PAGE_CAP) as server:
        print(f"sandbox Kore.ai API on {server.url}: {len(DEMO_BOTS)} bots, {days} days")
        options["host"] = server.url
        for step, title in enumerate(("first run: backfill", "second run: incremental")):
            if step:
                server.advance(DEMO_CLOCK_STEP)
                print(f"\n... the sandbox clock moves {DEMO_CLOCK_STEP.seconds // 60} minutes on ...")
            run = SourceRun()
            source = kore_sessions(clock=lambda: server.now, run=run, **options)
            _print_run(title, load_sessions(pipeline, source, run))
        heading = "sessions and messages per UTC day and bot against the API's"
        print(f"\n== audit: {heading}, last {DEMO_AUDIT_DAYS} days")
        auditor = Auditor(pipeline, resolve_options(**options), options, clock=lambda: server.now)
        print(f"   {auditor.run(AuditRange.last_days(DEMO_AUDIT_DAYS, server.now)).summary()}")
        _print_loaded(pipeline, target / DEFAULT_DUCKDB_FILE)
    _print_models(pipeline, target / DEFAULT_DUCKDB_FILE, target / DEFAULT_REPORT_FILE)
    return 0


def _demo_sessions(now: datetime, days: int, per_day: int) -> list[GeneratedSession]:
    """History up to now (with sessions still open) and the sessions of the next hours."""
    bots = list(DEMO_BOTS)
    past = generate_sessions(bots, now - timedelta(days=days), now, per_day, seed=7, active_share=0.5)
    future = generate_sessions(bots, now, now + 2 * DEMO_CLOCK_STEP, per_day, seed=8)
    return past + [session for session in future if session.start > now]


def _reset(target: Path) -> None:
    """Start from an empty demo folder (only what the demo itself writes is removed)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (DEFAULT_DUCKDB_FILE, DEFAULT_DUCKDB_FILE + ".wal", DEFAULT_REPORT_FILE):
        (target / name).unlink(missing_ok=True)
    shutil.rmtree(target / PIPELINES_FOLDER, ignore_errors=True)


def _print_run(title: str, summary: LoadSummary) -> None:
    """One run's summary under a heading."""
    print(f"\n== {title}")
    for line in summary.lines():
        print(f"   {line}")


def _print_loaded(pipeline: dlt.Pipeline, database: Path) -> None:
    """Tables of the dataset and their row counts, straight from DuckDB."""
    with pipeline.sql_client() as client:
        tables = client.execute_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\' ORDER BY table_name",
            pipeline.dataset_name,
        )
        print(f"\n== loaded into {database} (dataset {pipeline.dataset_name})")
        for (table,) in tables:
            count = client.execute_sql(f"SELECT COUNT(*) FROM {client.make_qualified_table_name(table)}")
            print(f"   {table:<28} {count[0][0]:>8} rows")


def _print_models(pipeline: dlt.Pipeline, database: Path, report: Path) -> None:
    """Build the SQL models, print the last days' containment per bot, write the HTML report."""
    result = build_models(pipeline, ModelSettings())
    print("\n== SQL models")
    for line in result.lines():
        print(f"   {line}")
    print(f"\n== containment, last {DEMO_TABLE_DAYS} days (fct_containment_daily)")
    for line in recent_containment_lines(pipeline, DEMO_TABLE_DAYS):
        print(f"   {line}")
    print(f"\n== where users leave: the last bot message of drop-off sessions, last {DEMO_TABLE_DAYS} days")
    for line in top_dropoff_lines(pipeline, DEMO_TABLE_DAYS):
        print(f"   {line}")
    print(f"\nreport: {write_report(pipeline, report)}")
    query = f"SELECT * FROM {pipeline.dataset_name}.fct_containment_weekly"
    code = f'import duckdb; duckdb.connect("{database}", read_only=True).sql("{query}").show()'
    print(f"query: {shlex.join([sys.executable, '-c', code])}")
    print(f"inspect: {inspect_command(pipeline)}")
