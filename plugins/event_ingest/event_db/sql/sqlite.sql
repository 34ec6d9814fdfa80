-- Event database schema for SQLite, the embedded default. Idempotent: run on every connect.
-- The same tables and columns as mysql.sql; times are TEXT 'YYYY-MM-DD HH:MM:SS.fff' in UTC, days
-- TEXT 'YYYY-MM-DD'.

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
    tags_digest      TEXT    NOT NULL DEFAULT '',
    file_types       TEXT    NOT NULL DEFAULT 'audio_tag',
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
    etag        TEXT,
    local_path  TEXT,
    ingested_at TEXT    NOT NULL,
    UNIQUE (session_id, s3_key)
);

CREATE TABLE IF NOT EXISTS ingest_rejects (
    reject_id     TEXT NOT NULL PRIMARY KEY,
    object_key    TEXT NOT NULL,
    session_key   TEXT,
    session_id    TEXT,
    session_date  TEXT,
    reason        TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    dag_run_id    TEXT,
    resolved_at   TEXT
);
CREATE INDEX IF NOT EXISTS rejects_by_session ON ingest_rejects (session_key, resolved_at);
CREATE INDEX IF NOT EXISTS rejects_open_by_day ON ingest_rejects (session_date) WHERE resolved_at IS NULL;

CREATE TABLE IF NOT EXISTS ingest_deferrals (
    deferral_id   TEXT NOT NULL PRIMARY KEY,
    session_key   TEXT NOT NULL,
    session_id    TEXT NOT NULL,
    session_date  TEXT NOT NULL,
    report_key    TEXT NOT NULL,
    reason        TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    dag_run_id    TEXT
);
CREATE INDEX IF NOT EXISTS deferrals_by_day ON ingest_deferrals (session_date);

CREATE TABLE IF NOT EXISTS ingest_runs (
    dag_run_id      TEXT    NOT NULL PRIMARY KEY,
    dag_id          TEXT    NOT NULL,
    run_type        TEXT    NOT NULL,
    first_day       TEXT,
    last_day        TEXT,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT,
    state           TEXT    NOT NULL,
    discovered      INTEGER NOT NULL DEFAULT 0,
    loaded_sessions INTEGER NOT NULL DEFAULT 0,
    loaded_events   INTEGER NOT NULL DEFAULT 0,
    skipped         INTEGER NOT NULL DEFAULT 0,
    deferred        INTEGER NOT NULL DEFAULT 0,
    rejected        INTEGER NOT NULL DEFAULT 0,
    failed_batches  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_start ON ingest_runs (started_at);

CREATE TABLE IF NOT EXISTS ingest_days (
    day      TEXT    NOT NULL PRIMARY KEY,
    sessions INTEGER NOT NULL DEFAULT 0,
    events   INTEGER NOT NULL DEFAULT 0
);
