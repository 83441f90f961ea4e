-- Grain: one row per reporting day, bot and language (day, bot_id, language), over the
-- counted sessions. A session counts once under each language it used, so the sessions of a
-- day's languages can add up to more than the day's sessions; no language is 'unknown'.
-- Answers: how containment differs by the language of the conversation.
WITH counted AS (
    SELECT * FROM fct_sessions WHERE is_counted
),

languages AS (
    SELECT * FROM stg_kore__session_languages
),

session_languages AS (
    SELECT
        counted.*,
        COALESCE(languages.language, 'unknown') AS language
    FROM counted
    LEFT JOIN languages ON languages.session_id = counted.session_id
),

by_language AS (
    SELECT
        day,
        bot_id,
        language,
        reporting_time_zone,
        COUNT(*) AS sessions,
        COUNT(*) FILTER (WHERE outcome = 'self_service') AS self_service,
        COUNT(*) FILTER (WHERE outcome = 'drop_off') AS drop_off,
        COUNT(*) FILTER (WHERE outcome = 'agent') AS agent,
        COUNT(*) FILTER (WHERE is_active) AS active_sessions
    FROM session_languages
    GROUP BY day, bot_id, language, reporting_time_zone
),

final AS (
    SELECT
        day,
        bot_id,
        language,
        sessions,
        self_service,
        drop_off,
        agent,
        active_sessions,
        CAST(self_service AS DOUBLE) / sessions AS containment_rate,
        CAST(drop_off AS DOUBLE) / sessions AS drop_off_rate,
        CAST(agent AS DOUBLE) / sessions AS agent_transfer_rate,
        reporting_time_zone
    FROM by_language
)

SELECT * FROM final
