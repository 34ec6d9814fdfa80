-- Event database schema for MySQL 8 / MariaDB 10.5+. Idempotent: run on every connect.
-- Ids and keys use a binary collation: S3 keys are case-sensitive strings.
-- Widths hold what S3 holds: keys up to 1,024 bytes, session ids up to 512 characters (a report's
-- key holds its session id twice, so a real one has at most 493 bytes). Rejects keep whole values
-- (TEXT); they are matched by hashes of the raw values (reject_id, session_key), never by text.
-- events: UNIQUE (session_id, s3_key) through a generated SHA-256 of the key, because the two
-- columns together exceed InnoDB's 3,072-byte index limit.

CREATE TABLE IF NOT EXISTS sessions (
    session_id       VARCHAR(512)  NOT NULL,
    vehicle_id       VARCHAR(128)  NOT NULL,
    driver_id        VARCHAR(128)  NULL,
    started_at       DATETIME(3)   NOT NULL,
    ended_at         DATETIME(3)   NULL,
    session_date     DATE          NOT NULL,
    software_version VARCHAR(64)   NULL,
    report_key       VARCHAR(1024) NOT NULL,
    report_etag      VARCHAR(255)  NOT NULL,
    tags_digest      CHAR(32)      CHARACTER SET ascii NOT NULL DEFAULT '',
    file_types       VARCHAR(64)   CHARACTER SET ascii NOT NULL DEFAULT 'audio_tag',
    event_count      INT           NOT NULL DEFAULT 0,
    ingested_at      DATETIME(3)   NOT NULL,
    updated_at       DATETIME(3)   NOT NULL,
    PRIMARY KEY (session_id),
    KEY sessions_by_date (session_date)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS events (
    event_id    CHAR(32)      CHARACTER SET ascii NOT NULL,
    session_id  VARCHAR(512)  NOT NULL,
    event_type  VARCHAR(32)   NOT NULL,
    s3_key      VARCHAR(1024) NOT NULL,
    s3_key_hash BINARY(32)    AS (UNHEX(SHA2(s3_key, 256))) STORED,
    frame_id    BIGINT        NULL,
    event_time  DATETIME(3)   NULL,
    time_source VARCHAR(16)   NOT NULL,
    duration_s  DOUBLE        NULL,
    size_bytes  BIGINT        NOT NULL,
    md5         CHAR(32)      CHARACTER SET ascii NULL,
    etag        VARCHAR(255)  NULL,
    local_path  TEXT          NULL,
    ingested_at DATETIME(3)   NOT NULL,
    PRIMARY KEY (event_id),
    UNIQUE KEY events_session_key (session_id, s3_key_hash)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS ingest_rejects (
    reject_id     CHAR(32)      CHARACTER SET ascii NOT NULL,
    object_key    TEXT          NOT NULL,
    session_key   CHAR(32)      CHARACTER SET ascii NULL,
    session_id    TEXT          NULL,
    session_date  DATE          NULL,
    reason        TEXT          NOT NULL,
    first_seen_at DATETIME(3)   NOT NULL,
    last_seen_at  DATETIME(3)   NOT NULL,
    dag_run_id    VARCHAR(250)  NULL,
    resolved_at   DATETIME(3)   NULL,
    PRIMARY KEY (reject_id),
    KEY rejects_by_session (session_key, resolved_at),
    KEY rejects_open_by_day (resolved_at, session_date)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS ingest_deferrals (
    deferral_id   CHAR(32)      CHARACTER SET ascii NOT NULL,
    session_key   CHAR(32)      CHARACTER SET ascii NOT NULL,
    session_id    VARCHAR(512)  NOT NULL,
    session_date  DATE          NOT NULL,
    report_key    VARCHAR(1024) NOT NULL,
    reason        TEXT          NOT NULL,
    first_seen_at DATETIME(3)   NOT NULL,
    last_seen_at  DATETIME(3)   NOT NULL,
    dag_run_id    VARCHAR(250)  NULL,
    PRIMARY KEY (deferral_id),
    KEY deferrals_by_day (session_date)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS ingest_runs (
    dag_run_id      VARCHAR(250) NOT NULL,
    dag_id          VARCHAR(250) NOT NULL,
    run_type        VARCHAR(32)  NOT NULL,
    first_day       DATE         NULL,
    last_day        DATE         NULL,
    started_at      DATETIME(3)  NOT NULL,
    finished_at     DATETIME(3)  NULL,
    state           VARCHAR(16)  NOT NULL,
    discovered      INT          NOT NULL DEFAULT 0,
    loaded_sessions INT          NOT NULL DEFAULT 0,
    loaded_events   INT          NOT NULL DEFAULT 0,
    skipped         INT          NOT NULL DEFAULT 0,
    deferred        INT          NOT NULL DEFAULT 0,
    rejected        INT          NOT NULL DEFAULT 0,
    failed_batches  INT          NOT NULL DEFAULT 0,
    PRIMARY KEY (dag_run_id),
    KEY runs_by_start (started_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS ingest_days (
    day      DATE   NOT NULL,
    sessions BIGINT NOT NULL DEFAULT 0,
    events   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day)
) ENGINE = InnoDB;
