-- Upgrade of an event database made by the first version of event_ingest (MySQL / MariaDB).
-- Run once, by the loader, when `sessions` has no `tags_digest` column; then the schema file runs.
-- Widths grow to what S3 holds; rejects get the hash they are matched by and their folder's day.

ALTER TABLE sessions
    MODIFY session_id VARCHAR(512) NOT NULL,
    MODIFY report_etag VARCHAR(255) NOT NULL,
    ADD COLUMN tags_digest CHAR(32) CHARACTER SET ascii NOT NULL DEFAULT '' AFTER report_etag,
    ADD COLUMN file_types VARCHAR(64) CHARACTER SET ascii NOT NULL DEFAULT 'audio_tag' AFTER tags_digest;

ALTER TABLE events
    DROP INDEX events_session_key,
    MODIFY session_id VARCHAR(512) NOT NULL,
    MODIFY s3_key VARCHAR(1024) NOT NULL,
    MODIFY local_path TEXT NULL,
    ADD COLUMN s3_key_hash BINARY(32) AS (UNHEX(SHA2(s3_key, 256))) STORED AFTER s3_key,
    ADD COLUMN etag VARCHAR(255) NULL AFTER md5,
    ADD UNIQUE KEY events_session_key (session_id, s3_key_hash);

ALTER TABLE ingest_rejects
    DROP INDEX rejects_by_session,
    MODIFY object_key TEXT NOT NULL,
    MODIFY session_id TEXT NULL,
    MODIFY reason TEXT NOT NULL,
    ADD COLUMN session_key CHAR(32) CHARACTER SET ascii NULL AFTER object_key,
    ADD COLUMN session_date DATE NULL AFTER session_id,
    ADD KEY rejects_by_session (session_key, resolved_at),
    ADD KEY rejects_open_by_day (resolved_at, session_date);
