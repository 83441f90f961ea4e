-- Grain: one row per reporting day and bot (day, bot_id), over the counted sessions.
-- Answers: how much the bot contained each day: sessions, self-service, drop-off and agent
-- transfers as counts and as shares of the day's sessions. The default scope is the vendor
-- dashboards' (closed, interactive, non-developer); `kore_model_settings` says which is used.
WITH counted AS (
    SELECT * FROM fct_sessions WHERE is_counted
),

daily AS (
    SELECT
        day,
        bot_id,
        reporting_time_zone,
        COUNT(*) AS sessions,
        COUNT(*) FILTER (WHERE outcome = 'self_service') AS self_service,
        COUNT(*) FILTER (WHERE outcome = 'drop_off') AS drop_off,
        COUNT(*) FILTER (WHERE outcome = 'agent') AS agent,
        COUNT(*) FILTER (WHERE is_active) AS active_sessions
    FROM counted
    GROUP BY day, bot_id, reporting_time_zone
),

final AS (
    SELECT
        day,
        bot_id,
        sessions,
        self_service,
        drop_off,
        agent,
        active_sessions,
        CAST(self_service AS DOUBLE) / sessions AS containment_rate,
        CAST(drop_off AS DOUBLE) / sessions AS drop_off_rate,
        CAST(agent AS DOUBLE) / sessions AS agent_transfer_rate,
        reporting_time_zone
    FROM daily
)

SELECT * FROM final
