-- Grain: one row per session and language (session_id, language), duplicates removed.
-- Answers: which languages a session used (the API's `session_lang` array).
WITH source AS (
    SELECT * FROM sessions__session_lang
),

renamed AS (
    SELECT DISTINCT
        CAST(session_id AS VARCHAR) AS session_id,
        CAST(lang AS VARCHAR) AS language
    FROM source
    WHERE lang IS NOT NULL
)

SELECT * FROM renamed
