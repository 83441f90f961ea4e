-- Grain: one row per reporting day, bot and channel (day, bot_id, channel), over the counted
-- sessions.
-- Answers: where the bot contains and where it fails: fct_containment_daily split by the
-- channel the session came in on (rtm, korevg, ivrVoice, msteams, ...).
WITH by_channel AS (
    SELECT * FROM int_containment__rollups WHERE rollup_name = 'day_channel'
),

final AS (
    SELECT
        period_start AS day,
        bot_id,
        channel,
        sessions, self_service, drop_off, agent, active_sessions,
        containment_rate, drop_off_rate, agent_transfer_rate,
        reporting_time_zone
    FROM by_channel
)

SELECT * FROM final
