-- Grain: one row per user tag of a session (session_id, tag_position).
-- Answers: the user tags (`tags.userTags`) as the session carried them; values of any JSON
-- type are text (numbers and booleans as JSON), `tag_value_type` keeps the original type.
WITH source AS (
    SELECT * FROM sessions__user_tags
),

renamed AS (
    SELECT
        CAST(session_id AS VARCHAR) AS session_id,
        CAST(position AS BIGINT) AS tag_position,
        CAST(name AS VARCHAR) AS tag_name,
        CAST(value AS VARCHAR) AS tag_value,
        CAST(value_type AS VARCHAR) AS tag_value_type
    FROM source
)

SELECT * FROM renamed
