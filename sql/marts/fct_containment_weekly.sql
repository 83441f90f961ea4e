-- Grain: one row per reporting week and bot (week_start, bot_id); weeks start on Monday in
-- the reporting time zone.
-- Answers: the weekly containment trend, counted from the week's sessions (not an average of
-- daily rates), with the same scope and columns as fct_containment_daily.
WITH weekly AS (
    SELECT * FROM int_containment__rollups WHERE rollup_name = 'week'
),

final AS (
    SELECT
        period_start AS week_start,
        bot_id,
        sessions, self_service, drop_off, agent, active_sessions,
        containment_rate, drop_off_rate, agent_transfer_rate,
        reporting_time_zone
    FROM weekly
)

SELECT * FROM final
