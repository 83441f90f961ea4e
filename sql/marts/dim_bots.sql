-- Grain: one row per bot (bot_id) that has loaded sessions.
-- Answers: which bots there are, the span of their loaded sessions and how many of those
-- the containment marts count; a filter list for BI tools.
WITH sessions AS (
    SELECT * FROM fct_sessions
),

bots AS (
    SELECT
        bot_id,
        MIN(started_at) AS first_session_at,
        MAX(started_at) AS last_session_at,
        COUNT(*) AS sessions,
        COUNT(*) FILTER (WHERE is_counted) AS counted_sessions,
        COUNT(DISTINCT channel) AS channels
    FROM sessions
    GROUP BY bot_id
)

SELECT * FROM bots
