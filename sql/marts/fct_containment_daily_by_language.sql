-- Grain: one row per reporting day, bot and language (day, bot_id, language), over the
-- counted sessions. A session counts once under each language it used, so the sessions of a
-- day's languages can add up to more than the day's sessions; no language is 'unknown'.
-- Answers: how containment differs by the language of the conversation.
WITH by_language AS (
    SELECT * FROM int_containment__rollups WHERE rollup_name = 'day_language'
),

final AS (
    SELECT
        period_start AS day,
        bot_id,
        language,
        sessions, self_service, drop_off, agent, active_sessions,
        containment_rate, drop_off_rate, agent_transfer_rate,
        reporting_time_zone
    FROM by_language
)

SELECT * FROM final
