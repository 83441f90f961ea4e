-- Grain: one row per reporting day and bot (day, bot_id), over the counted sessions.
-- Answers: how much the bot contained each day: sessions, self-service, drop-off and agent
-- transfers as counts and as shares of the day's sessions. The default scope is the vendor
-- dashboards' (closed, interactive, non-developer); `kore_model_settings` says which is used.
WITH daily AS (
    SELECT * FROM int_containment__rollups WHERE rollup_name = 'day'
),

final AS (
    SELECT
        period_start AS day,
        bot_id,
        sessions, self_service, drop_off, agent, active_sessions,
        containment_rate, drop_off_rate, agent_transfer_rate,
        reporting_time_zone
    FROM daily
)

SELECT * FROM final
