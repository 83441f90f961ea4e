-- Grain: one row per tag the marts may slice by (tag_scope, tag_name).
-- Answers: which tags describe kinds of sessions rather than people or single sessions: those
-- named in the allow list (`[models] tag_names`), or, without one, those with at most
-- `tag_max_values` distinct values whose name does not look personal and none of whose values
-- does. What looks personal is the one rule of pipelines/personal_data.py (a caller's number,
-- an id, an address, a name; a phone number, an e-mail or IP address, an id), whose two
-- patterns the settings table holds. Caller numbers and call ids stay in the raw tables unless
-- a user names them.
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

named AS (
    -- The name as the rule reads it: lower case, without spaces, `_`, `-` and `.`; and as a value.
    SELECT
        profiled.tag_scope,
        profiled.tag_name,
        profiled.distinct_values,
        REGEXP_MATCHES(
            REPLACE(REPLACE(REPLACE(REPLACE(LOWER(profiled.tag_name), ' ', ''), '_', ''), '-', ''), '.', ''),
            settings.personal_name_pattern
        )
        -- A name can itself be data (a bot that names tags after values: an e-mail, a number).
        OR REGEXP_MATCHES(LOWER(profiled.tag_name), settings.personal_value_pattern) AS personal_name
    FROM profiled
    CROSS JOIN settings
),

candidates AS (
    -- Few enough values to be categories, and a name that does not look personal.
    SELECT named.tag_scope, named.tag_name
    FROM named
    CROSS JOIN settings
    WHERE named.distinct_values <= settings.tag_max_values AND NOT named.personal_name
),

candidate_values AS (
    -- Each value of a candidate once: the pattern reads these few values, not every tag row.
    SELECT DISTINCT candidates.tag_scope, candidates.tag_name, tags.tag_value
    FROM candidates
    INNER JOIN tags ON tags.tag_scope = candidates.tag_scope AND tags.tag_name = candidates.tag_name
),

screened AS (
    -- How many of each candidate's values look personal.
    SELECT
        candidate_values.tag_scope,
        candidate_values.tag_name,
        COUNT(
            CASE WHEN REGEXP_MATCHES(LOWER(candidate_values.tag_value), settings.personal_value_pattern) THEN 1 END
        ) AS personal_values
    FROM candidate_values
    CROSS JOIN settings
    GROUP BY candidate_values.tag_scope, candidate_values.tag_name
),

final AS (
    SELECT profiled.tag_scope, profiled.tag_name, profiled.distinct_values
    FROM profiled
    CROSS JOIN settings
    LEFT JOIN screened
        ON screened.tag_scope = profiled.tag_scope AND screened.tag_name = profiled.tag_name
    WHERE CASE
        WHEN settings.tag_allow_list IS NOT NULL
            THEN POSITION(',' || profiled.tag_name || ',' IN settings.tag_allow_list) > 0
        -- A tag that is no candidate has no screened row: NULL, left out.
        ELSE screened.personal_values = 0
    END
)

SELECT * FROM final
