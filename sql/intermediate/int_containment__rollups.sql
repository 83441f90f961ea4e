-- Grain: one row per rollup and key (rollup_name, period_start, bot_id, channel, language,
-- tag_scope, tag_name, tag_value), over the counted sessions; a key column the rollup does
-- not group by is NULL.
-- Answers: the containment counts and rates of every containment mart, written once. Each
-- mart selects one rollup: 'day', 'week' and 'month' (per period and bot), 'day_channel',
-- 'day_language' and 'day_tag' (per day, bot and that slice). The language and tag rollups
-- fan out: a session counts once under each language it used ('unknown' when none) and once
-- under each distinct tag it carries, so their sessions can add up to more than a day's.
WITH counted AS (
    SELECT
        session_id, day, week_start, month_start, bot_id, channel, reporting_time_zone, outcome,
        is_active
    FROM fct_sessions
    WHERE is_counted
),

languages AS (
    SELECT * FROM stg_kore__session_languages
),

sliced AS (
    SELECT * FROM int_tags__sliced
),

tags AS (
    -- Only the tags that describe kinds of sessions (int_tags__sliced says which); a tag listed
    -- twice on a session counts once (DISTINCT removes the repeats, within each scope).
    SELECT DISTINCT session_id, 'session' AS tag_scope, tag_name, tag_value
    FROM stg_kore__session_tags
    WHERE tag_name IN (SELECT tag_name FROM sliced WHERE tag_scope = 'session')
    UNION ALL
    SELECT DISTINCT session_id, 'user' AS tag_scope, tag_name, tag_value
    FROM stg_kore__user_tags
    WHERE tag_name IN (SELECT tag_name FROM sliced WHERE tag_scope = 'user')
),

outcomes AS (
    -- The counted sessions by every key of the day, week, month and channel rollups (with the
    -- time zone, outcome and activity): those rollups add up these few rows a day rather than
    -- every session.
    SELECT
        day, week_start, month_start, bot_id, channel, reporting_time_zone, outcome, is_active,
        COUNT(*) AS session_count
    FROM counted
    GROUP BY day, week_start, month_start, bot_id, channel, reporting_time_zone, outcome, is_active
),

slices AS (
    -- Every rollup's rows, with the keys that rollup groups by and how many sessions each row
    -- stands for: one branch a rollup, so that only the language and tag rollups join (and fan
    -- out), each once, a row for each language or tag of a session.
    SELECT
        'day' AS rollup_name, day AS period_start, bot_id, NULL AS channel, NULL AS language,
        NULL AS tag_scope, NULL AS tag_name, NULL AS tag_value, reporting_time_zone, outcome,
        is_active, session_count
    FROM outcomes
    UNION ALL
    SELECT
        'week', week_start, bot_id, NULL, NULL, NULL, NULL, NULL, reporting_time_zone, outcome,
        is_active, session_count
    FROM outcomes
    UNION ALL
    SELECT
        'month', month_start, bot_id, NULL, NULL, NULL, NULL, NULL, reporting_time_zone, outcome,
        is_active, session_count
    FROM outcomes
    UNION ALL
    SELECT
        'day_channel', day, bot_id, COALESCE(channel, 'unknown'), NULL, NULL, NULL, NULL,
        reporting_time_zone, outcome, is_active, session_count
    FROM outcomes
    UNION ALL
    SELECT
        'day_language', counted.day, counted.bot_id, NULL, COALESCE(languages.language, 'unknown'),
        NULL, NULL, NULL, counted.reporting_time_zone, counted.outcome, counted.is_active, 1
    FROM counted
    LEFT JOIN languages ON languages.session_id = counted.session_id
    UNION ALL
    -- A session without tags is in no tag's row.
    SELECT
        'day_tag', counted.day, counted.bot_id, NULL, NULL, tags.tag_scope, tags.tag_name,
        tags.tag_value, counted.reporting_time_zone, counted.outcome, counted.is_active, 1
    FROM counted
    INNER JOIN tags ON tags.session_id = counted.session_id
),

counts AS (
    SELECT
        rollup_name,
        period_start,
        bot_id,
        channel,
        language,
        tag_scope,
        tag_name,
        tag_value,
        reporting_time_zone,
        -- Counts stay BIGINT: a SUM of BIGINT is HUGEINT on DuckDB and numeric on PostgreSQL.
        CAST(SUM(session_count) AS BIGINT) AS sessions,
        CAST(
            SUM(CASE WHEN outcome = 'self_service' THEN session_count ELSE 0 END) AS BIGINT
        ) AS self_service,
        CAST(SUM(CASE WHEN outcome = 'drop_off' THEN session_count ELSE 0 END) AS BIGINT) AS drop_off,
        CAST(SUM(CASE WHEN outcome = 'agent' THEN session_count ELSE 0 END) AS BIGINT) AS agent,
        CAST(SUM(CASE WHEN is_active THEN session_count ELSE 0 END) AS BIGINT) AS active_sessions
    FROM slices
    GROUP BY
        rollup_name, period_start, bot_id, channel, language, tag_scope, tag_name, tag_value,
        reporting_time_zone
),

final AS (
    SELECT
        *,
        CAST(self_service AS DOUBLE) / sessions AS containment_rate,
        CAST(drop_off AS DOUBLE) / sessions AS drop_off_rate,
        CAST(agent AS DOUBLE) / sessions AS agent_transfer_rate
    FROM counts
)

SELECT * FROM final
