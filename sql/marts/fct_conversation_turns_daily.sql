-- Grain: one row per reporting day and bot (day, bot_id), over the counted sessions
-- (`is_counted` of fct_sessions, on the day fct_sessions gives them), with their messages.
-- Answers: how conversations go turn by turn. `sessions` counts every counted session, as
-- fct_containment_daily does; the message measures are over `sessions_with_messages`, the
-- counted sessions with at least one message loaded (none while the messages resource is
-- off): incoming (the user's) and outgoing (the bot's) messages, in total and per such
-- session; the bot's first response time, from a session's first incoming message to the
-- first outgoing message at or after it (continuous percentiles, in seconds, over the
-- sessions that got one); and the sessions whose user wrote but that got no bot message at or
-- after the user's first. Other message types (`ctrlmsg`) count in neither direction.
WITH counted AS (
    SELECT session_id, day, bot_id, reporting_time_zone
    FROM fct_sessions
    WHERE is_counted
),

loaded_messages AS (
    SELECT
        stg_kore__messages.session_id,
        stg_kore__messages.message_type,
        stg_kore__messages.is_from_agent,
        stg_kore__messages.created_at
    FROM stg_kore__messages
    INNER JOIN counted ON counted.session_id = stg_kore__messages.session_id
),

first_incoming AS (
    SELECT session_id, MIN(created_at) AS first_incoming_at
    FROM loaded_messages
    WHERE message_type = 'incoming'
    GROUP BY session_id
),

first_response AS (
    -- The first bot message (not a live agent's) at or after the user's first.
    SELECT first_incoming.session_id, MIN(loaded_messages.created_at) AS first_response_at
    FROM first_incoming
    INNER JOIN loaded_messages
        ON loaded_messages.session_id = first_incoming.session_id
        AND loaded_messages.message_type = 'outgoing'
        AND NOT loaded_messages.is_from_agent
        AND loaded_messages.created_at >= first_incoming.first_incoming_at
    GROUP BY first_incoming.session_id
),

per_session AS (
    SELECT
        session_id,
        COUNT(*) FILTER (WHERE message_type = 'incoming') AS incoming_messages,
        COUNT(*) FILTER (WHERE message_type = 'outgoing') AS outgoing_messages
    FROM loaded_messages
    GROUP BY session_id
),

sessions_turns AS (
    SELECT
        counted.day,
        counted.bot_id,
        counted.reporting_time_zone,
        per_session.session_id IS NOT NULL AS has_messages,
        COALESCE(per_session.incoming_messages, 0) AS incoming_messages,
        COALESCE(per_session.outgoing_messages, 0) AS outgoing_messages,
        first_incoming.session_id IS NOT NULL AS has_incoming,
        first_response.session_id IS NOT NULL AS has_response,
        CAST(
            EXTRACT(EPOCH FROM (first_response.first_response_at - first_incoming.first_incoming_at))
            AS DOUBLE
        ) AS first_response_seconds
    FROM counted
    LEFT JOIN per_session ON per_session.session_id = counted.session_id
    LEFT JOIN first_incoming ON first_incoming.session_id = counted.session_id
    LEFT JOIN first_response ON first_response.session_id = counted.session_id
),

daily AS (
    SELECT
        day,
        bot_id,
        reporting_time_zone,
        COUNT(*) AS sessions,
        COUNT(*) FILTER (WHERE has_messages) AS sessions_with_messages,
        SUM(incoming_messages) AS incoming_messages,
        SUM(outgoing_messages) AS outgoing_messages,
        COUNT(*) FILTER (WHERE has_incoming) AS sessions_with_incoming,
        COUNT(*) FILTER (WHERE has_incoming AND NOT has_response) AS sessions_without_bot_answer,
        PERCENTILE_CONT([0.5, 0.9]) WITHIN GROUP (ORDER BY first_response_seconds)
            AS first_response_percentiles
    FROM sessions_turns
    GROUP BY day, bot_id, reporting_time_zone
),

final AS (
    SELECT
        day,
        bot_id,
        sessions,
        sessions_with_messages,
        CAST(incoming_messages AS BIGINT) AS incoming_messages,
        CAST(outgoing_messages AS BIGINT) AS outgoing_messages,
        CASE
            WHEN sessions_with_messages > 0
                THEN CAST(incoming_messages AS DOUBLE) / CAST(sessions_with_messages AS DOUBLE)
        END AS incoming_per_session,
        CASE
            WHEN sessions_with_messages > 0
                THEN CAST(outgoing_messages AS DOUBLE) / CAST(sessions_with_messages AS DOUBLE)
        END AS outgoing_per_session,
        sessions_with_incoming,
        sessions_without_bot_answer,
        first_response_percentiles[1] AS first_response_p50_seconds,
        first_response_percentiles[2] AS first_response_p90_seconds,
        reporting_time_zone
    FROM daily
)

SELECT * FROM final
