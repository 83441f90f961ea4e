-- Grain: one row per rollup and key (rollup_name, period_start, bot_id, channel, language,
-- tag_scope, tag_name, tag_value), over the counted sessions; a key column the rollup does
-- not group by is NULL.
-- Answers: the containment counts and rates of every containment mart, written once. Each
-- mart selects one rollup: 'day', 'week' and 'month' (per period and bot), 'day_channel',
-- 'day_language' and 'day_tag' (per day, bot and that slice). The language and tag rollups
-- fan out: a session counts once under each language it used ('unknown' when none) and once
-- under each distinct tag it carries, so their sessions can add up to more than a day's.
WITH counted AS (
    SELECT * FROM fct_sessions WHERE is_counted
),

languages AS (
    SELECT * FROM stg_kore__session_languages
),

all_tags AS (
    -- A tag listed twice on a session counts once (UNION removes the repeats).
    SELECT session_id, 'session' AS tag_scope, tag_name, tag_value
    FROM stg_kore__session_tags
    UNION
    SELECT session_id, 'user' AS tag_scope, tag_name, tag_value
    FROM stg_kore__user_tags
),

tags AS (
    -- Only the tags that describe kinds of sessions (int_tags__sliced says which).
    SELECT all_tags.*
    FROM all_tags
    INNER JOIN int_tags__sliced AS sliced
        ON sliced.tag_scope = all_tags.tag_scope AND sliced.tag_name = all_tags.tag_name
),

rollups AS (
    SELECT *
    FROM (
        VALUES ('day'), ('week'), ('month'), ('day_channel'), ('day_language'), ('day_tag')
    ) AS rollups (rollup_name)
),

slices AS (
    -- Every counted session in every rollup, with the keys that rollup groups by; the
    -- language and tag joins match only in their own rollup, where they fan out.
    SELECT
        rollups.rollup_name,
        CASE rollups.rollup_name
            WHEN 'week' THEN counted.week_start
            WHEN 'month' THEN counted.month_start
            ELSE counted.day
        END AS period_start,
        counted.bot_id,
        CASE
            WHEN rollups.rollup_name = 'day_channel' THEN COALESCE(counted.channel, 'unknown')
        END AS channel,
        CASE
            WHEN rollups.rollup_name = 'day_language' THEN COALESCE(languages.language, 'unknown')
        END AS language,
        tags.tag_scope,
        tags.tag_name,
        tags.tag_value,
        counted.reporting_time_zone,
        counted.outcome,
        counted.is_active
    FROM counted
    CROSS JOIN rollups
    LEFT JOIN languages
        ON rollups.rollup_name = 'day_language' AND languages.session_id = counted.session_id
    LEFT JOIN tags
        ON rollups.rollup_name = 'day_tag' AND tags.session_id = counted.session_id
    -- A session without tags is in no tag's row.
    WHERE rollups.rollup_name <> 'day_tag' OR tags.session_id IS NOT NULL
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
