-- Grain: one row per tag the marts may slice by (tag_scope, tag_name).
-- Answers: which tags describe kinds of sessions rather than people or single sessions: those
-- named in the allow list (`[models] tag_names`), or, without one, those with at most
-- `tag_max_values` distinct values whose name does not look personal (a caller's number, an
-- id, a phone number, an e-mail address, a name). Caller numbers and call ids stay in the raw
-- tables unless a user names them.
WITH settings AS (
    SELECT * FROM kore_model_settings
),

tags AS (
    SELECT 'session' AS tag_scope, tag_name, tag_value FROM stg_kore__session_tags
    UNION ALL
    SELECT 'user' AS tag_scope, tag_name, tag_value FROM stg_kore__user_tags
),

profiled AS (
    SELECT tag_scope, tag_name, COUNT(DISTINCT tag_value) AS distinct_values
    FROM tags
    WHERE tag_name IS NOT NULL
    GROUP BY tag_scope, tag_name
),

looks_personal AS (
    SELECT
        tag_scope,
        tag_name,
        distinct_values,
        LOWER(tag_name) LIKE '%caller%'
        OR LOWER(tag_name) LIKE '%phone%'
        OR LOWER(tag_name) LIKE '%number%'
        OR LOWER(tag_name) LIKE '%mail%'
        OR LOWER(tag_name) LIKE '%name%'
        OR LOWER(tag_name) LIKE '%id' AS personal
    FROM profiled
),

final AS (
    SELECT looks_personal.tag_scope, looks_personal.tag_name, looks_personal.distinct_values
    FROM looks_personal
    CROSS JOIN settings
    WHERE CASE
        WHEN settings.tag_allow_list IS NOT NULL
            THEN POSITION(',' || looks_personal.tag_name || ',' IN settings.tag_allow_list) > 0
        ELSE looks_personal.distinct_values <= settings.tag_max_values AND NOT looks_personal.personal
    END
)

SELECT * FROM final
