-- Grain: one row per reporting day and bot (day, bot_id), over the sessions whose status is
-- in scope (closed by default; active too with include_active), whatever their interactive
-- or developer flags, so that the shares below mean something.
-- Answers: how sessions behave: messages and tasks per session, duration percentiles
-- (continuous, in seconds), and the shares of interactive and developer sessions.
WITH in_scope AS (
    SELECT * FROM fct_sessions WHERE is_status_in_scope
),

daily AS (
    SELECT
        day,
        bot_id,
        reporting_time_zone,
        COUNT(*) AS sessions,
        COUNT(*) FILTER (WHERE is_interactive) AS interactive_sessions,
        COUNT(*) FILTER (WHERE NOT is_interactive) AS non_interactive_sessions,
        COUNT(*) FILTER (WHERE is_developer) AS developer_sessions,
        AVG(CAST(message_count AS DOUBLE)) AS messages_per_session,
        AVG(CAST(task_count AS DOUBLE)) AS tasks_per_session,
        PERCENTILE_CONT([0.5, 0.9, 0.95]) WITHIN GROUP (ORDER BY duration_seconds)
            AS duration_percentiles
    FROM in_scope
    GROUP BY day, bot_id, reporting_time_zone
),

final AS (
    SELECT
        day,
        bot_id,
        sessions,
        interactive_sessions,
        non_interactive_sessions,
        developer_sessions,
        CAST(interactive_sessions AS DOUBLE) / sessions AS interactive_share,
        CAST(developer_sessions AS DOUBLE) / sessions AS developer_share,
        messages_per_session,
        tasks_per_session,
        duration_percentiles[1] AS duration_p50_seconds,
        duration_percentiles[2] AS duration_p90_seconds,
        duration_percentiles[3] AS duration_p95_seconds,
        reporting_time_zone
    FROM daily
)

SELECT * FROM final
