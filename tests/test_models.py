"""The SQL models: discovery and order from the SQL itself, rendering, and data tests on both warehouses."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from kore_sessions.sandbox import GeneratedSession, SandboxServer
from kore_sessions.source import ConfigError
from kore_sessions.warehouse.model_files import ModelError, discover_models
from kore_sessions.warehouse.model_settings import ModelSettings
from kore_sessions.warehouse.models import SETTINGS_TABLE, build_models, render_model, source_stand_ins
from sqlglot import exp

from .conftest import BOTS, HISTORY_START, NOW, Loader, api_time, make_apps

# The tables dlt loads, which only staging reads; the messages' only with the messages resource.
MESSAGE_TABLES = {"messages", "messages__components", "messages__tags"}
RAW_TABLES = {
    "sessions", "sessions__session_lang", "sessions__session_tags", "sessions__user_tags", *MESSAGE_TABLES,
}  # fmt: skip
# The outcomes fct_sessions gives a session with a documented containment.
OUTCOMES = ("self_service", "drop_off", "agent")
# The outcome of each containment type the API shows.
OUTCOME_OF = {"selfService": "self_service", "dropOff": "drop_off", "agent": "agent"}
# The marts that show containment; each selects a rollup of ROLLUPS.
CONTAINMENT_MARTS = (
    "fct_containment_daily",
    "fct_containment_daily_by_channel",
    "fct_containment_daily_by_language",
    "fct_containment_weekly",
    "fct_containment_monthly",
    "fct_containment_by_tag",
)
# The one model that counts containment and computes its rates; the marts select from it.
ROLLUPS = "int_containment__rollups"
# What each layer must be built as: staging costs nothing as a view, the rest is computed once.
MATERIALIZATION = {"staging": "VIEW", "intermediate": "TABLE", "marts": "TABLE"}
# The containment measures that are not plain columns of fct_sessions; each must be computed
# in ROLLUPS and nowhere else (`sessions` also names other marts' own counts).
CONTAINMENT_MEASURES = (
    "self_service", "drop_off", "agent", "active_sessions",
    "containment_rate", "drop_off_rate", "agent_transfer_rate",
)  # fmt: skip
# Expressions that compute rather than select: aggregates and arithmetic.
COMPUTING = (exp.AggFunc, exp.Div, exp.Mul, exp.Add, exp.Sub)


def write_model(folder: Path, layer: str, name: str, sql: str, grain: str = "(id)") -> None:
    """Write one model file with a grain header."""
    (folder / layer).mkdir(parents=True, exist_ok=True)
    (folder / layer / f"{name}.sql").write_text(f"-- Grain: one row per thing {grain}.\n{sql}\n")


def test_build_order_comes_from_the_sql(tmp_path: Path) -> None:
    """A model is built after every model it reads, whatever the file names say."""
    write_model(tmp_path, "marts", "a_last", "WITH x AS (SELECT * FROM b_middle) SELECT * FROM x")
    write_model(tmp_path, "marts", "b_middle", "SELECT * FROM stg_c JOIN stg_first USING (id)")
    write_model(tmp_path, "staging", "stg_c", "SELECT * FROM stg_first")
    write_model(tmp_path, "staging", "stg_first", "SELECT session_id AS id FROM sessions")
    order = [model.name for model in discover_models(tmp_path)]
    assert order.index("stg_first") < order.index("stg_c") < order.index("b_middle") < order.index("a_last")
    reads = {model.name: model.reads for model in discover_models(tmp_path)}
    assert reads["a_last"] == {"b_middle"}, "a CTE name is not a table read"


def test_a_cycle_is_refused(tmp_path: Path) -> None:
    """Models reading each other in a loop cannot be ordered: a clear error names them."""
    write_model(tmp_path, "marts", "fct_one", "SELECT * FROM fct_two")
    write_model(tmp_path, "marts", "fct_two", "SELECT * FROM fct_one")
    with pytest.raises(ModelError, match="cycle"):
        discover_models(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 1 AS id", "must start with a comment"),
        ("-- Grain: one row (id)\nSELECT 1 AS id; SELECT 2 AS id", "exactly one SELECT"),
        ("-- Grain: one row (id)\nSELEC oops FROM", "not valid SQL"),
    ],
)
def test_bad_model_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    """No grain header, two statements or broken SQL: the error names the file and the rule."""
    (tmp_path / "marts").mkdir()
    (tmp_path / "marts" / "fct_bad.sql").write_text(text)
    with pytest.raises(ModelError, match=message):
        discover_models(tmp_path)


def test_project_models_read_only_models_and_loaded_tables() -> None:
    """Every table a model reads is a model built before it, a dlt table, or the settings."""
    models = discover_models()
    built: set[str] = set()
    for model in models:
        unknown = model.reads - built - RAW_TABLES - {SETTINGS_TABLE}
        assert not unknown, f"{model.name} reads {unknown} before they are built"
        built.add(model.name)
        assert model.materialization == MATERIALIZATION[model.layer], model.name
    staging = [m for m in models if m.layer == "staging"]
    assert all(m.name.startswith("stg_kore__") for m in staging)
    assert {m.name for m in models if m.layer == "intermediate"} == {ROLLUPS, "int_tags__sliced"}
    assert {m.name for m in models if m.layer == "marts"} >= set(CONTAINMENT_MARTS) | {
        "fct_session_behaviour_daily",
        "fct_sessions",
    }
    assert all(m.reads <= RAW_TABLES for m in staging), "only staging reads the raw tables"


def test_containment_is_counted_in_one_place() -> None:
    """The containment marts only select from the rollups; no other model computes their measures.

    The values tests cannot see this: a mart that counted or divided by itself would give the
    same numbers, until one of the copies changed.
    """
    models = {model.name: model for model in discover_models()}
    for mart in CONTAINMENT_MARTS:
        query = models[mart].query
        assert models[mart].reads == {ROLLUPS}, f"{mart} reads {set(models[mart].reads)}"
        computed = [node.sql() for node in query.find_all(*COMPUTING)]
        assert not computed, f"{mart} computes {computed} itself"
    for measure in CONTAINMENT_MEASURES:
        where = [
            name
            for name, model in models.items()
            for alias in model.query.find_all(exp.Alias)
            if alias.alias == measure and alias.this.find(*COMPUTING)
        ]
        assert where == [ROLLUPS], f"{measure} is computed in {where}"


def test_render_qualifies_tables_and_transpiles() -> None:
    """Tables are qualified by the dataset, CTEs are not; PostgreSQL gets its own dialect."""
    model = next(m for m in discover_models() if m.name == "fct_session_behaviour_daily")
    duck = render_model(model, "duckdb", "my_data")
    postgres = render_model(model, "postgres", "my_data")
    assert duck.startswith('CREATE TABLE "my_data"."fct_session_behaviour_daily" AS')
    assert '"my_data"."fct_sessions"' in postgres and '"my_data"."in_scope"' not in postgres
    assert "PERCENTILE_CONT(ARRAY[0.5, 0.9, 0.95]) WITHIN GROUP" in postgres
    assert "DOUBLE PRECISION" in postgres
    staging = next(m for m in discover_models() if m.name == "stg_kore__session_tags")
    absent = render_model(staging, "postgres", "d", source_stand_ins({}, "d"))
    assert '"d"."sessions__session_tags"' not in absent and "WHERE FALSE" in absent
    no_value = {"sessions__session_tags": {"session_id", "position", "name", "value_type"}}
    patched = render_model(staging, "duckdb", "d", source_stand_ins(no_value, "d"))
    assert 'SELECT *, CAST(NULL AS TEXT) AS "value" FROM "d"."sessions__session_tags"' in patched


def test_settings_are_validated() -> None:
    """A time zone that is not an IANA name is a configuration error, before anything runs."""
    with pytest.raises(ConfigError, match="unknown reporting time zone 'Mars/Olympus'"):
        ModelSettings(reporting_time_zone="Mars/Olympus")
    for ambiguous in ("CET", "EST", "localtime", "posixrules", "Factory", "Europe/Nowhere"):
        with pytest.raises(ConfigError, match="unknown reporting time zone"):
            ModelSettings(reporting_time_zone=ambiguous)
    with pytest.raises(ConfigError, match="must be true or false"):
        ModelSettings.from_config(include_active="maybe")
    assert ModelSettings.from_config(include_developer="true").include_developer is True


def test_settings_come_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """[models] in config (here via environment) sets the defaults; explicit values win."""
    monkeypatch.setenv("MODELS__REPORTING_TIME_ZONE", "Europe/Berlin")
    monkeypatch.setenv("MODELS__INCLUDE_ACTIVE", "true")
    settings = ModelSettings.from_config()
    assert (settings.reporting_time_zone, settings.include_active) == ("Europe/Berlin", True)
    assert ModelSettings.from_config(reporting_time_zone="UTC").reporting_time_zone == "UTC"


@pytest.fixture
def built(server: SandboxServer, make_loader, warehouse: str) -> Loader:
    """The history loaded into `warehouse` and the models built with default settings."""
    loader = make_loader(server, warehouse)
    loader.run()
    build_models(loader.pipeline, ModelSettings())
    return loader


def test_every_model_has_unique_keys(built: Loader) -> None:
    """No two rows of any model share the key its header declares, and no key is NULL but tag values.

    An intermediate model's key may be NULL where its header says so (a rollup's unused keys);
    the marts that select from it are checked for NULL keys. A model of the messages alone is
    empty when none were loaded.
    """
    messages_loaded = built.query("SELECT COUNT(*) FROM stg_kore__messages")[0][0] > 0
    for model in discover_models():
        keys = ", ".join(model.grain)
        duplicates = built.query(
            f"SELECT {keys}, COUNT(*) FROM {model.name} GROUP BY {keys} HAVING COUNT(*) > 1"
        )
        assert not duplicates, f"{model.name}: duplicate keys {duplicates[:3]}"
        for key in model.grain:
            if key != "tag_value" and model.layer != "intermediate":
                nulls = built.query(f"SELECT COUNT(*) FROM {model.name} WHERE {key} IS NULL")
                assert nulls == [(0,)], f"{model.name}.{key} has NULLs"
        if model.reads <= MESSAGE_TABLES and not messages_loaded:
            continue
        assert built.query(f"SELECT COUNT(*) FROM {model.name}")[0][0] > 0, f"{model.name} is empty"


def test_rollup_keys_keep_the_types_of_their_sources(built: Loader) -> None:
    """The rollups' slice keys have their source columns' types on every warehouse (the NULLs of
    the rollups that do not group by them included)."""

    def column_type(table: str, column: str) -> str:
        rows = built.query(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = "
            f"'{built.pipeline.dataset_name}' AND table_name = '{table}' AND column_name = '{column}'"
        )
        assert rows, f"{table}.{column} not found"
        return str(rows[0][0])

    sources = {
        "channel": ("fct_sessions", "channel"),
        "language": ("stg_kore__session_languages", "language"),
        "tag_name": ("stg_kore__session_tags", "tag_name"),
        "tag_value": ("stg_kore__session_tags", "tag_value"),
    }
    for key, (table, column) in sources.items():
        assert column_type(ROLLUPS, key) == column_type(table, column), key


def test_accepted_values_and_consistent_counts(built: Loader) -> None:
    """Outcomes, scopes and rates take only their allowed values; counts add up."""
    outcomes = {row[0] for row in built.query("SELECT DISTINCT outcome FROM fct_sessions")}
    assert outcomes <= {*OUTCOMES, "unknown"}
    scopes = {row[0] for row in built.query("SELECT DISTINCT tag_scope FROM fct_containment_by_tag")}
    assert scopes == {"session", "user"}
    for mart in CONTAINMENT_MARTS:
        bad = built.query(
            f"SELECT COUNT(*) FROM {mart} WHERE sessions <= 0 "
            "OR self_service + drop_off + agent <> sessions OR active_sessions <> 0 "
            "OR ABS(containment_rate + drop_off_rate + agent_transfer_rate - 1) > 1e-9 "
            "OR ABS(containment_rate - CAST(self_service AS DOUBLE PRECISION) / sessions) > 1e-12 "
            "OR reporting_time_zone <> 'UTC'"
        )
        assert bad == [(0,)], f"{mart} has rows that do not add up"
    shares = built.query(
        "SELECT COUNT(*) FROM fct_session_behaviour_daily WHERE interactive_share < 0 "
        "OR interactive_share > 1 OR developer_share < 0 OR developer_share > 1 "
        "OR interactive_sessions + non_interactive_sessions <> sessions "
        "OR duration_p50_seconds > duration_p90_seconds OR duration_p90_seconds > duration_p95_seconds"
    )
    assert shares == [(0,)]


def test_daily_rates_match_the_api_in_two_time_zones(built: Loader, server: SandboxServer) -> None:
    """fct_containment_daily equals counts made here from the API's own sessions, UTC and Kolkata."""
    for zone in ("UTC", "Asia/Kolkata"):
        build_models(built.pipeline, ModelSettings(reporting_time_zone=zone))
        expected: Counter[tuple[str, str, str]] = Counter()
        for view in server.visible_sessions():
            if view["sessionStatus"] != "closed" or view["sessionType"] != "interactive":
                continue
            if view["isDeveloper"]:
                continue
            day = api_time(view["start_time"]).astimezone(ZoneInfo(zone)).date().isoformat()
            expected[(day, view["botId"], "sessions")] += 1
            expected[(day, view["botId"], OUTCOME_OF[view["containmentType"]])] += 1
        got: Counter[tuple[str, str, str]] = Counter()
        columns = ("sessions", *OUTCOMES)
        rows = built.query(f"SELECT day, bot_id, {', '.join(columns)} FROM fct_containment_daily")
        for day, bot, *counts in rows:
            for name, value in zip(columns, counts, strict=True):
                if value:
                    got[(day.isoformat(), bot, name)] = value
        assert got == expected, f"daily counts differ in {zone}"


def test_rebuild_replaces_models_and_records_settings(built: Loader) -> None:
    """Building again with other settings replaces every model; the settings row says which."""
    before = built.query("SELECT SUM(sessions) FROM fct_containment_daily")[0][0]
    build_models(built.pipeline, ModelSettings(include_active=True, include_developer=True))
    after = built.query("SELECT SUM(sessions), SUM(active_sessions) FROM fct_containment_daily")[0]
    assert after[0] > before and after[1] > 0
    settings = built.query(
        f"SELECT reporting_time_zone, include_active, include_developer FROM {SETTINGS_TABLE}"
    )
    assert settings == [("UTC", True, True)]


def test_models_build_before_any_tag_or_language_arrives(make_loader, warehouse: str) -> None:
    """Child tables dlt has not created yet read as empty: the models still build."""
    bare = GeneratedSession(
        session_id="bare-0001",
        bot_id=BOTS[0],
        user_id="u-1",
        channel="rtm",
        start=NOW - timedelta(hours=3),
        end=NOW - timedelta(hours=2),
        session_lang=(),
    )
    with SandboxServer([bare], apps=make_apps(), now=NOW) as server:
        loader = make_loader(server, warehouse)
        loader.run(start_date=HISTORY_START.isoformat(), bot_ids=[BOTS[0]])
        build_models(loader.pipeline, ModelSettings())
        by_language = loader.query("SELECT language, sessions FROM fct_containment_daily_by_language")
        assert by_language == [("unknown", 1)]
        assert loader.query("SELECT COUNT(*) FROM fct_containment_by_tag") == [(0,)]


def test_models_need_loaded_sessions(make_loader, server: SandboxServer) -> None:
    """Before the first load there is nothing to model: say so, and what to run."""
    loader = make_loader(server, "duckdb")
    with pytest.raises(ModelError, match="load sessions first"):
        build_models(loader.pipeline, ModelSettings())


def test_odd_api_values_are_counted_as_the_spec_says(make_loader, warehouse: str) -> None:
    """An open session shown as agent counts as self-service; no containment is 'unknown'; a
    tag that is always null (so dlt never makes its `value` column) still builds."""
    start = NOW - timedelta(hours=5)
    sessions = [
        GeneratedSession(
            session_id="open-agent",
            bot_id=BOTS[0],
            user_id="u-1",
            channel="rtm",
            start=start,
            end=NOW + timedelta(hours=1),
            extra={"containmentType": "agent"},
        ),
        GeneratedSession(
            session_id="closed-unknown",
            bot_id=BOTS[0],
            user_id="u-2",
            channel="rtm",
            start=start + timedelta(minutes=1),
            end=start + timedelta(minutes=9),
            extra={"containmentType": None},
            session_tags=(("callerNumber", None),),
        ),
    ]
    with SandboxServer(sessions, apps=make_apps(), now=NOW) as server:
        loader = make_loader(server, warehouse)
        loader.run(start_date=HISTORY_START.isoformat(), bot_ids=[BOTS[0]])
    build_models(loader.pipeline, ModelSettings(include_active=True))
    outcomes = loader.query("SELECT session_id, outcome, is_counted FROM fct_sessions ORDER BY session_id")
    assert outcomes == [("closed-unknown", "unknown", True), ("open-agent", "self_service", True)]
    columns = "sessions, self_service, drop_off, agent, active_sessions"
    daily = loader.query(f"SELECT {columns} FROM fct_containment_daily")
    assert daily == [(2, 1, 0, 0, 1)]
    build_models(loader.pipeline, ModelSettings(include_active=True, tag_names=("callerNumber",)))
    tags = loader.query("SELECT tag_scope, tag_name, tag_value, sessions FROM fct_containment_by_tag")
    assert tags == [("session", "callerNumber", None, 1)]
