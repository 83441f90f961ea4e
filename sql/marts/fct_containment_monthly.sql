-- Grain: one row per reporting month and bot (month_start, bot_id); months start on the 1st in
-- the reporting time zone.
-- Answers: the monthly containment trend, counted from the month's sessions (not an average of
-- daily rates), with the same scope and columns as fct_containment_daily.
WITH counted AS (
    SELECT * FROM fct_sessions WHERE is_counted
),

monthly AS (
    SELECT
        month_start,
        bot_id,
        reporting_time_zone,
        COUNT(*) AS sessions,
        COUNT(*) FILTER (WHERE outcome = 'self_service') AS self_service,
        COUNT(*) FILTER (WHERE outcome = 'drop_off') AS drop_off,
        COUNT(*) FILTER (WHERE outcome = 'agent') AS agent,
        COUNT(*) FILTER (WHERE is_active) AS active_sessions
    FROM counted
    GROUP BY month_start, bot_id, reporting_time_zone
),

final AS (
    SELECT
        month_start,
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
    FROM monthly
)

SELECT * FROM final
