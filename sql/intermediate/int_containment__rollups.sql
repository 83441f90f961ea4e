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
    -- twice on a session counts once (UNION removes the repeats).
    SELECT session_id, 'session' AS tag_scope, tag_name, tag_value
    FROM stg_kore__session_tags
    WHERE tag_name IN (SELECT tag_name FROM sliced WHERE tag_scope = 'session')
    UNION
    SELECT session_id, 'user' AS tag_scope, tag_name, tag_value
    FROM stg_kore__user_tags
    WHERE tag_name IN (SELECT tag_name FROM sliced WHERE tag_scope = 'user')
),

slices AS (
    -- Every counted session in every rollup, with the keys that rollup groups by: one branch a
    -- rollup, so that only the language and tag rollups join (and fan out), each once.
    SELECT
        'day' AS rollup_name, day AS period_start, bot_id, NULL AS channel, NULL AS language,
        NULL AS tag_scope, NULL AS tag_name, NULL AS tag_value, reporting_time_zone, outcome,
        is_active
    FROM counted
    UNION ALL
    SELECT
        'week', week_start, bot_id, NULL, NULL, NULL, NULL, NULL, reporting_time_zone, outcome,
        is_active
    FROM counted
    UNION ALL
    SELECT
        'month', month_start, bot_id, NULL, NULL, NULL, NULL, NULL, reporting_time_zone, outcome,
        is_active
    FROM counted
    UNION ALL
    SELECT
        'day_channel', day, bot_id, COALESCE(channel, 'unknown'), NULL, NULL, NULL, NULL,
        reporting_time_zone, outcome, is_active
    FROM counted
    UNION ALL
    SELECT
        'day_language', counted.day, counted.bot_id, NULL, COALESCE(languages.language, 'unknown'),
        NULL, NULL, NULL, counted.reporting_time_zone, counted.outcome, counted.is_active
    FROM counted
    LEFT JOIN languages ON languages.session_id = counted.session_id
    UNION ALL
    -- A session without tags is in no tag's row.
    SELECT
        'day_tag', counted.day, counted.bot_id, NULL, NULL, tags.tag_scope, tags.tag_name,
        tags.tag_value, counted.reporting_time_zone, counted.outcome, counted.is_active
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
        COUNT(*) AS sessions,
        COUNT(*) FILTER (WHERE outcome = 'self_service') AS self_service,
        COUNT(*) FILTER (WHERE outcome = 'drop_off') AS drop_off,
        COUNT(*) FILTER (WHERE outcome = 'agent') AS agent,
        COUNT(*) FILTER (WHERE is_active) AS active_sessions
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
