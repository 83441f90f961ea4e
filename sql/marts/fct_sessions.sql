-- Grain: one row per session (session_id): every loaded session, counted or not.
-- Answers: the reporting day, week and month of a session (its start in the reporting time
-- zone of `kore_model_settings`), its outcome and duration, and whether the containment
-- marts count it (`is_counted`) under the settings. The other marts are built from this one.
WITH sessions AS (
    SELECT * FROM stg_kore__sessions
),

settings AS (
    SELECT * FROM kore_model_settings
),

call_ids AS (
    -- The voice call id (session tag `callId`), pivoted onto the session.
    SELECT session_id, MAX(tag_value) AS call_id
    FROM stg_kore__session_tags
    WHERE tag_name = 'callId'
    GROUP BY session_id
),

classified AS (
    SELECT
        sessions.*,
        settings.reporting_time_zone,
        sessions.started_at AT TIME ZONE settings.reporting_time_zone AS started_at_local,
        COALESCE(sessions.session_status = 'active', FALSE) AS is_active,
        -- Pre-9.0 servers do not say; such sessions count as interactive.
        COALESCE(sessions.session_type <> 'non-interactive', TRUE) AS is_interactive,
        COALESCE(sessions.is_developer, FALSE) AS is_developer_session,
        settings.include_active,
        settings.include_non_interactive,
        settings.include_developer,
        settings.include_personal_data
    FROM sessions
    CROSS JOIN settings
),

derived AS (
    SELECT
        classified.*,
        CAST(started_at_local AS DATE) AS day,
        CAST(DATE_TRUNC('week', started_at_local) AS DATE) AS week_start,
        CAST(DATE_TRUNC('month', started_at_local) AS DATE) AS month_start,
        CASE
            -- The dashboards count an ongoing session as self-service until it closes.
            WHEN is_active THEN 'self_service'
            WHEN containment_type = 'selfService' THEN 'self_service'
            WHEN containment_type = 'dropOff' THEN 'drop_off'
            WHEN containment_type = 'agent' THEN 'agent'
            -- Closed without a containment the API documents: counted, in no outcome.
            ELSE 'unknown'
        END AS outcome,
        CAST(EXTRACT(EPOCH FROM (ended_at - started_at)) AS DOUBLE) AS duration_seconds,
        (NOT is_active OR include_active) AS is_status_in_scope
    FROM classified
),

final AS (
    SELECT
        derived.session_id,
        derived.bot_id,
        derived.channel,
        -- Personal data stays in the raw tables unless asked for (`include_personal_data`).
        CASE WHEN derived.include_personal_data THEN derived.user_id END AS user_id,
        CASE WHEN derived.include_personal_data THEN call_ids.call_id END AS call_id,
        derived.started_at,
        derived.ended_at,
        derived.reporting_time_zone,
        derived.started_at_local,
        derived.day,
        derived.week_start,
        derived.month_start,
        derived.session_status,
        derived.is_active,
        derived.session_type,
        derived.is_interactive,
        derived.is_developer_session AS is_developer,
        derived.containment_type,
        derived.outcome,
        derived.duration_seconds,
        derived.message_count,
        derived.task_count,
        derived.is_status_in_scope,
        (
            derived.is_status_in_scope
            AND (derived.is_interactive OR derived.include_non_interactive)
            AND (NOT derived.is_developer_session OR derived.include_developer)
        ) AS is_counted
    FROM derived
    LEFT JOIN call_ids ON call_ids.session_id = derived.session_id
)

SELECT * FROM final
