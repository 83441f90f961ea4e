-- Grain: one row per session (session_id), as the API last showed it.
-- Answers: the loaded sessions with readable names and fixed types; rows the API reported
-- deleted are left out. Nothing else is filtered or derived here.
WITH source AS (
    SELECT * FROM sessions
),

renamed AS (
    SELECT
        CAST(session_id AS VARCHAR) AS session_id,
        CAST(bot_id AS VARCHAR) AS bot_id,
        CAST(channel AS VARCHAR) AS channel,
        CAST(user_id AS VARCHAR) AS user_id,
        CAST(start_time AS TIMESTAMPTZ) AS started_at,
        CAST(end_time AS TIMESTAMPTZ) AS ended_at,
        CAST(session_type AS VARCHAR) AS session_type,
        CAST(containment_type AS VARCHAR) AS containment_type,
        CAST(is_developer AS BOOLEAN) AS is_developer,
        CAST(session_status AS VARCHAR) AS session_status,
        CAST(no_of_messages_exchanged AS BIGINT) AS message_count,
        CAST(no_of_tasks_executed AS BIGINT) AS task_count
    FROM source
    WHERE deleted_in_source IS NULL OR NOT deleted_in_source
)

SELECT * FROM renamed
