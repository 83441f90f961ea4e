-- Grain: one row per reporting day, bot, tag scope, tag name and tag value
-- (day, bot_id, tag_scope, tag_name, tag_value), over the counted sessions carrying that tag;
-- tag_scope is 'session' (tags.sessionTags) or 'user' (tags.userTags).
-- Answers: containment sliced by a tag, e.g. by caller number, customer segment or a custom
-- session tag. A session with the same tag twice counts once.
WITH by_tag AS (
    SELECT * FROM int_containment__rollups WHERE rollup_name = 'day_tag'
),

final AS (
    SELECT
        period_start AS day,
        bot_id,
        tag_scope,
        tag_name,
        tag_value,
        sessions, self_service, drop_off, agent, active_sessions,
        containment_rate, drop_off_rate, agent_transfer_rate,
        reporting_time_zone
    FROM by_tag
)

SELECT * FROM final
