-- Event database schema for PostgreSQL 13+. Idempotent: run on every connect.
-- The same tables and columns as mysql.sql. Times are TIMESTAMP(3) in UTC (without time zone);
-- text is TEXT (PostgreSQL text cannot hold U+0000, which the loader never sends).

CREATE TABLE IF NOT EXISTS sessions (
    session_id       VARCHAR(512)  NOT NULL PRIMARY KEY,
    vehicle_id       VARCHAR(128)  NOT NULL,
    driver_id        VARCHAR(128)  NULL,
    started_at       TIMESTAMP(3)  NOT NULL,
    ended_at         TIMESTAMP(3)  NULL,
    session_date     DATE          NOT NULL,
    software_version VARCHAR(64)   NULL,
    report_key       VARCHAR(1024) NOT NULL,
    report_etag      VARCHAR(255)  NOT NULL,
    tags_digest      CHAR(32)      NOT NULL DEFAULT '',
    file_types       VARCHAR(64)   NOT NULL DEFAULT 'audio_tag',
    event_count      INTEGER       NOT NULL DEFAULT 0,
    ingested_at      TIMESTAMP(3)  NOT NULL,
    updated_at       TIMESTAMP(3)  NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_date ON sessions (session_date);

CREATE TABLE IF NOT EXISTS events (
    event_id    CHAR(32)         NOT NULL PRIMARY KEY,
    session_id  VARCHAR(512)     NOT NULL,
    event_type  VARCHAR(32)      NOT NULL,
    s3_key      VARCHAR(1024)    NOT NULL,
    frame_id    BIGINT           NULL,
    event_time  TIMESTAMP(3)     NULL,
    time_source VARCHAR(16)      NOT NULL,
    duration_s  DOUBLE PRECISION NULL,
    size_bytes  BIGINT           NOT NULL,
    md5         CHAR(32)         NULL,
    etag        VARCHAR(255)     NULL,
    local_path  TEXT             NULL,
    ingested_at TIMESTAMP(3)     NOT NULL,
    CONSTRAINT events_session_key UNIQUE (session_id, s3_key)
);

CREATE TABLE IF NOT EXISTS ingest_rejects (
    reject_id     CHAR(32)     NOT NULL PRIMARY KEY,
    object_key    TEXT         NOT NULL,
    session_key   CHAR(32)     NULL,
    session_id    TEXT         NULL,
    session_date  DATE         NULL,
    reason        TEXT         NOT NULL,
    first_seen_at TIMESTAMP(3) NOT NULL,
    last_seen_at  TIMESTAMP(3) NOT NULL,
    dag_run_id    VARCHAR(250) NULL,
    resolved_at   TIMESTAMP(3) NULL
);
CREATE INDEX IF NOT EXISTS rejects_by_session ON ingest_rejects (session_key, resolved_at);
CREATE INDEX IF NOT EXISTS rejects_open_by_day ON ingest_rejects (session_date) WHERE resolved_at IS NULL;

CREATE TABLE IF NOT EXISTS ingest_deferrals (
    deferral_id   CHAR(32)      NOT NULL PRIMARY KEY,
    session_key   CHAR(32)      NOT NULL,
    session_id    VARCHAR(512)  NOT NULL,
    session_date  DATE          NOT NULL,
    report_key    VARCHAR(1024) NOT NULL,
    reason        TEXT          NOT NULL,
    first_seen_at TIMESTAMP(3)  NOT NULL,
    last_seen_at  TIMESTAMP(3)  NOT NULL,
    dag_run_id    VARCHAR(250)  NULL
);
CREATE INDEX IF NOT EXISTS deferrals_by_day ON ingest_deferrals (session_date);

CREATE TABLE IF NOT EXISTS ingest_runs (
    dag_run_id      VARCHAR(250) NOT NULL PRIMARY KEY,
    dag_id          VARCHAR(250) NOT NULL,
    run_type        VARCHAR(32)  NOT NULL,
    first_day       DATE         NULL,
    last_day        DATE         NULL,
    started_at      TIMESTAMP(3) NOT NULL,
    finished_at     TIMESTAMP(3) NULL,
    state           VARCHAR(16)  NOT NULL,
    discovered      INTEGER      NOT NULL DEFAULT 0,
    loaded_sessions INTEGER      NOT NULL DEFAULT 0,
    loaded_events   INTEGER      NOT NULL DEFAULT 0,
    skipped         INTEGER      NOT NULL DEFAULT 0,
    deferred        INTEGER      NOT NULL DEFAULT 0,
    rejected        INTEGER      NOT NULL DEFAULT 0,
    failed_batches  INTEGER      NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_start ON ingest_runs (started_at);

CREATE TABLE IF NOT EXISTS ingest_days (
    day      DATE   NOT NULL PRIMARY KEY,
    sessions BIGINT NOT NULL DEFAULT 0,
    events   BIGINT NOT NULL DEFAULT 0
);
