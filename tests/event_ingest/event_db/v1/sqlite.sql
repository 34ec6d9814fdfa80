-- Event database schema for SQLite, the embedded default. Idempotent: run on every connect.
-- Same tables and columns as mysql.sql; times are TEXT 'YYYY-MM-DD HH:MM:SS.fff' in UTC.

CREATE TABLE IF NOT EXISTS sessions (
    session_id       TEXT    NOT NULL PRIMARY KEY,
    vehicle_id       TEXT    NOT NULL,
    driver_id        TEXT,
    started_at       TEXT    NOT NULL,
    ended_at         TEXT,
    session_date     TEXT    NOT NULL,
    software_version TEXT,
    report_key       TEXT    NOT NULL,
    report_etag      TEXT    NOT NULL,
    event_count      INTEGER NOT NULL DEFAULT 0,
    ingested_at      TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_date ON sessions (session_date);

CREATE TABLE IF NOT EXISTS events (
    event_id    TEXT    NOT NULL PRIMARY KEY,
    session_id  TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    s3_key      TEXT    NOT NULL,
    frame_id    INTEGER,
    event_time  TEXT,
    time_source TEXT    NOT NULL,
    duration_s  REAL,
    size_bytes  INTEGER NOT NULL,
    md5         TEXT,
    local_path  TEXT,
    ingested_at TEXT    NOT NULL,
    UNIQUE (session_id, s3_key)
);

CREATE TABLE IF NOT EXISTS ingest_rejects (
    reject_id     TEXT NOT NULL PRIMARY KEY,
    object_key    TEXT NOT NULL,
    session_id    TEXT,
    reason        TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    dag_run_id    TEXT,
    resolved_at   TEXT
);
CREATE INDEX IF NOT EXISTS rejects_by_session ON ingest_rejects (session_id, resolved_at);
