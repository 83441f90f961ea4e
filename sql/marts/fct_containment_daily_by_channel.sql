-- Grain: one row per reporting day, bot and channel (day, bot_id, channel), over the counted
-- sessions.
-- Answers: where the bot contains and where it fails: fct_containment_daily split by the
-- channel the session came in on (rtm, korevg, ivrVoice, msteams, ...).
WITH counted AS (
    SELECT * FROM fct_sessions WHERE is_counted
),

by_channel AS (
    SELECT
        day,
        bot_id,
        COALESCE(channel, 'unknown') AS channel,
        reporting_time_zone,
        COUNT(*) AS sessions,
        COUNT(*) FILTER (WHERE outcome = 'self_service') AS self_service,
        COUNT(*) FILTER (WHERE outcome = 'drop_off') AS drop_off,
        COUNT(*) FILTER (WHERE outcome = 'agent') AS agent,
        COUNT(*) FILTER (WHERE is_active) AS active_sessions
    FROM counted
    GROUP BY day, bot_id, COALESCE(channel, 'unknown'), reporting_time_zone
),

final AS (
    SELECT
        day,
        bot_id,
        channel,
        sessions,
        self_service,
        drop_off,
        agent,
        active_sessions,
        CAST(self_service AS DOUBLE) / sessions AS containment_rate,
        CAST(drop_off AS DOUBLE) / sessions AS drop_off_rate,
        CAST(agent AS DOUBLE) / sessions AS agent_transfer_rate,
        reporting_time_zone
    FROM by_channel
)

SELECT * FROM final
