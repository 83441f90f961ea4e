-- Grain: one row per reporting month and bot (month_start, bot_id); months start on the 1st in
-- the reporting time zone.
-- Answers: the monthly containment trend, counted from the month's sessions (not an average of
-- daily rates), with the same scope and columns as fct_containment_daily.
WITH monthly AS (
    SELECT * FROM int_containment__rollups WHERE rollup_name = 'month'
),

final AS (
    SELECT
        period_start AS month_start,
        bot_id,
        sessions, self_service, drop_off, agent, active_sessions,
        containment_rate, drop_off_rate, agent_transfer_rate,
        reporting_time_zone
    FROM monthly
)

SELECT * FROM final
