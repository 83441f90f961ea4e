-- Grain: one row per reporting day, bot, outcome and last bot message
-- (day, bot_id, outcome, last_bot_message), over the counted sessions (`is_counted` of
-- fct_sessions) that ended in a drop-off or an agent transfer.
-- Answers: where users leave: the last thing the bot said in each such session (its last
-- outgoing message not written by a live agent, by created_at, then message_id), normalised so that one prompt is one row
-- whatever it was filled with: e-mail addresses read `<email>`; ids (UUIDs, with a Kore prefix
-- such as `u-`, `st-`, `ms-` or `cs-` or not, and runs of 16 or more hex digits, which take in
-- MongoDB ids and long numbers) read `<id>`; runs of digits, with the spaces and signs between
-- them (`+1 415 555 0199`, `12.50`), read `<n>`; tabs and line breaks are spaces, repeated
-- spaces one; the case is kept; the result is trimmed and cut to 200 characters.
-- A session without any loaded message reads '(no messages loaded)', one whose messages hold
-- no bot message '(no bot message)', one whose last bot message has no text
-- '(bot message without text)'. `share` is of the day's, bot's and outcome's sessions.
-- Only the bot's words are read (stg_kore__messages passes no user text).
WITH left_sessions AS (
    SELECT session_id, day, bot_id, outcome, reporting_time_zone
    FROM fct_sessions
    WHERE is_counted AND outcome IN ('drop_off', 'agent')
),

loaded_messages AS (
    SELECT * FROM stg_kore__messages
),

sessions_with_messages AS (
    SELECT DISTINCT session_id FROM loaded_messages
),

bot_messages_ranked AS (
    SELECT
        session_id,
        bot_text,
        ROW_NUMBER() OVER (
            PARTITION BY session_id ORDER BY created_at DESC NULLS LAST, message_id DESC
        ) AS recency
    FROM loaded_messages
    WHERE message_type = 'outgoing' AND NOT is_from_agent
),

last_bot_messages AS (
    -- Only those of the sessions this mart counts: the masking below reads no other text.
    SELECT bot_messages_ranked.session_id, bot_messages_ranked.bot_text
    FROM bot_messages_ranked
    INNER JOIN left_sessions ON left_sessions.session_id = bot_messages_ranked.session_id
    WHERE bot_messages_ranked.recency = 1
),

-- Masking: each pattern replaces every match. The text is split at the pattern's matches and
-- joined again with the mask between the pieces, which DuckDB and PostgreSQL read alike (their
-- REGEXP_REPLACE replaces the first match only unless flagged `g`, a flag sqlglot cannot write
-- for every warehouse). The patterns run in this order, none leaving what an earlier one would
-- match; they use plain bracket classes, groups and bounds, no backslash, no word boundary.
emails_masked AS (
    SELECT
        session_id,
        ARRAY_TO_STRING(
            REGEXP_SPLIT_TO_ARRAY(
                REPLACE(REPLACE(REPLACE(bot_text, CHR(13), ' '), CHR(10), ' '), CHR(9), ' '),
                '[A-Za-z0-9._+-]+@[A-Za-z0-9-]+([.][A-Za-z0-9-]+)+'
            ),
            '<email>'
        ) AS masked_text
    FROM last_bot_messages
),

ids_masked AS (
    -- A UUID, with a Kore prefix (`u-`, `st-`, `ms-`, `cs-`, `cp-`, `o-`) or not, or a run of
    -- 16 or more hex digits (a MongoDB id, a hash, a card number).
    SELECT
        session_id,
        ARRAY_TO_STRING(
            REGEXP_SPLIT_TO_ARRAY(
                masked_text,
                '((u|st|ms|cs|cp|o)-)?([0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{16,})'
            ),
            '<id>'
        ) AS masked_text
    FROM emails_masked
),

numbers_masked AS (
    -- Digits, with the spaces and signs between them: a phone number is one `<n>`.
    SELECT
        session_id,
        ARRAY_TO_STRING(REGEXP_SPLIT_TO_ARRAY(masked_text, '[+]?[0-9]+([ ().,:/+-]*[0-9]+)*'), '<n>')
            AS masked_text
    FROM ids_masked
),

normalised AS (
    -- Repeated spaces as one, trimmed, cut to 200 characters.
    SELECT
        session_id,
        TRIM(LEFT(TRIM(ARRAY_TO_STRING(REGEXP_SPLIT_TO_ARRAY(masked_text, ' +'), ' ')), 200))
            AS normalised_text
    FROM numbers_masked
),

labelled AS (
    SELECT
        left_sessions.day,
        left_sessions.bot_id,
        left_sessions.outcome,
        left_sessions.reporting_time_zone,
        sessions_with_messages.session_id IS NOT NULL AS messages_loaded,
        CASE
            WHEN sessions_with_messages.session_id IS NULL THEN '(no messages loaded)'
            WHEN last_bot_messages.session_id IS NULL THEN '(no bot message)'
            WHEN normalised.normalised_text IS NULL OR normalised.normalised_text = ''
                THEN '(bot message without text)'
            ELSE normalised.normalised_text
        END AS last_bot_message
    FROM left_sessions
    LEFT JOIN sessions_with_messages ON sessions_with_messages.session_id = left_sessions.session_id
    LEFT JOIN last_bot_messages ON last_bot_messages.session_id = left_sessions.session_id
    LEFT JOIN normalised ON normalised.session_id = left_sessions.session_id
),

counts AS (
    SELECT
        day,
        bot_id,
        outcome,
        last_bot_message,
        messages_loaded,
        reporting_time_zone,
        COUNT(*) AS sessions
    FROM labelled
    GROUP BY day, bot_id, outcome, last_bot_message, messages_loaded, reporting_time_zone
),

final AS (
    SELECT
        day,
        bot_id,
        outcome,
        last_bot_message,
        sessions,
        CAST(sessions AS DOUBLE)
            / CAST(SUM(sessions) OVER (PARTITION BY day, bot_id, outcome) AS DOUBLE) AS share,
        messages_loaded,
        reporting_time_zone
    FROM counts
)

SELECT * FROM final
