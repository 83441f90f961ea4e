-- Grain: one row per reporting day, bot, tag scope, tag name and tag value
-- (day, bot_id, tag_scope, tag_name, tag_value), over the counted sessions carrying that tag;
-- tag_scope is 'session' (tags.sessionTags) or 'user' (tags.userTags).
-- Answers: containment sliced by a tag, e.g. by caller number, customer segment or a custom
-- session tag. A session with the same tag twice counts once.
WITH counted AS (
    SELECT * FROM fct_sessions WHERE is_counted
),

tags AS (
    SELECT DISTINCT session_id, 'session' AS tag_scope, tag_name, tag_value
    FROM stg_kore__session_tags
    UNION
    SELECT DISTINCT session_id, 'user' AS tag_scope, tag_name, tag_value
    FROM stg_kore__user_tags
),

tagged AS (
    SELECT
        counted.*,
        tags.tag_scope,
        tags.tag_name,
        tags.tag_value
    FROM counted
    INNER JOIN tags ON tags.session_id = counted.session_id
),

by_tag AS (
    SELECT
        day,
        bot_id,
        tag_scope,
        tag_name,
        tag_value,
        reporting_time_zone,
        COUNT(*) AS sessions,
        COUNT(*) FILTER (WHERE outcome = 'self_service') AS self_service,
        COUNT(*) FILTER (WHERE outcome = 'drop_off') AS drop_off,
        COUNT(*) FILTER (WHERE outcome = 'agent') AS agent,
        COUNT(*) FILTER (WHERE is_active) AS active_sessions
    FROM tagged
    GROUP BY day, bot_id, tag_scope, tag_name, tag_value, reporting_time_zone
),

final AS (
    SELECT
        day,
        bot_id,
        tag_scope,
        tag_name,
        tag_value,
        sessions,
        self_service,
        drop_off,
        agent,
        active_sessions,
        CAST(self_service AS DOUBLE) / sessions AS containment_rate,
        CAST(drop_off AS DOUBLE) / sessions AS drop_off_rate,
        CAST(agent AS DOUBLE) / sessions AS agent_transfer_rate,
        reporting_time_zone
    FROM by_tag
)

SELECT * FROM final
