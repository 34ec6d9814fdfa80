-- Upgrade of an event database made by the first version of event_ingest (SQLite).
-- Run once, by the loader, when `sessions` has no `tags_digest` column; then the schema file runs.

ALTER TABLE sessions ADD COLUMN tags_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN file_types TEXT NOT NULL DEFAULT 'audio_tag';
ALTER TABLE events ADD COLUMN etag TEXT;
ALTER TABLE ingest_rejects ADD COLUMN session_key TEXT;
ALTER TABLE ingest_rejects ADD COLUMN session_date TEXT;
DROP INDEX IF EXISTS rejects_by_session;
