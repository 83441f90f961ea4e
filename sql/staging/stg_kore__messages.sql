-- Grain: one row per message (message_id), as the Conversation History API last showed it.
-- Answers: the loaded messages with readable names and fixed types. Only the bot's own words
-- pass (`bot_text`, the text of outgoing messages); what a user typed never does, even where
-- the raw table keeps it, and neither does the user's id (`created_by`): personal data stays
-- in the raw tables. Nothing is filtered here.
WITH source AS (
    SELECT * FROM messages
),

renamed AS (
    SELECT
        CAST(message_id AS VARCHAR) AS message_id,
        CAST(session_id AS VARCHAR) AS session_id,
        CAST(bot_id AS VARCHAR) AS bot_id,
        CAST(message_type AS VARCHAR) AS message_type,
        CAST(status AS VARCHAR) AS message_status,
        CAST(created_on AS TIMESTAMPTZ) AS created_at,
        CAST(modified_on AS TIMESTAMPTZ) AS modified_at,
        CAST(channel AS VARCHAR) AS channel,
        CAST(lang AS VARCHAR) AS language,
        CAST(message_source AS VARCHAR) AS message_source,
        CAST(is_developer AS BOOLEAN) AS is_developer,
        CAST(is_builder AS BOOLEAN) AS is_builder,
        CAST(component_kinds AS VARCHAR) AS component_kinds,
        CAST(text_length AS BIGINT) AS text_length,
        -- An outgoing message a live agent wrote (the API's `author`), not the bot.
        COALESCE(CAST(from_agent AS BOOLEAN), FALSE) AS is_from_agent,
        -- The bot's words only: `outgoing` is the bot's message type, an agent's are left out.
        CAST(
            CASE WHEN message_type = 'outgoing' AND NOT COALESCE(CAST(from_agent AS BOOLEAN), FALSE) THEN text END
            AS VARCHAR
        ) AS bot_text
    FROM source
)

SELECT * FROM renamed
