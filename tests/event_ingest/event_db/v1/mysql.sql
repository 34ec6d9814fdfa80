-- Event database schema for MySQL 8 / MariaDB 10.5+. Idempotent: run on every connect.
-- Ids and keys use a binary collation: S3 keys are case-sensitive byte strings.
-- (session_id, s3_key) fits InnoDB's 3072-byte index limit: 128*4 + 640*4 bytes.

CREATE TABLE IF NOT EXISTS sessions (
    session_id       VARCHAR(128)  NOT NULL,
    vehicle_id       VARCHAR(128)  NOT NULL,
    driver_id        VARCHAR(128)  NULL,
    started_at       DATETIME(3)   NOT NULL,
    ended_at         DATETIME(3)   NULL,
    session_date     DATE          NOT NULL,
    software_version VARCHAR(64)   NULL,
    report_key       VARCHAR(1024) NOT NULL,
    report_etag      VARCHAR(128)  NOT NULL,
    event_count      INT           NOT NULL DEFAULT 0,
    ingested_at      DATETIME(3)   NOT NULL,
    updated_at       DATETIME(3)   NOT NULL,
    PRIMARY KEY (session_id),
    KEY sessions_by_date (session_date)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS events (
    event_id    CHAR(32)      CHARACTER SET ascii NOT NULL,
    session_id  VARCHAR(128)  NOT NULL,
    event_type  VARCHAR(32)   NOT NULL,
    s3_key      VARCHAR(640)  NOT NULL,
    frame_id    BIGINT        NULL,
    event_time  DATETIME(3)   NULL,
    time_source VARCHAR(16)   NOT NULL,
    duration_s  DOUBLE        NULL,
    size_bytes  BIGINT        NOT NULL,
    md5         CHAR(32)      CHARACTER SET ascii NULL,
    local_path  VARCHAR(2048) NULL,
    ingested_at DATETIME(3)   NOT NULL,
    PRIMARY KEY (event_id),
    UNIQUE KEY events_session_key (session_id, s3_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS ingest_rejects (
    reject_id     CHAR(32)      CHARACTER SET ascii NOT NULL,
    object_key    VARCHAR(1024) NOT NULL,
    session_id    VARCHAR(128)  NULL,
    reason        VARCHAR(1024) NOT NULL,
    first_seen_at DATETIME(3)   NOT NULL,
    last_seen_at  DATETIME(3)   NOT NULL,
    dag_run_id    VARCHAR(250)  NULL,
    resolved_at   DATETIME(3)   NULL,
    PRIMARY KEY (reject_id),
    KEY rejects_by_session (session_id, resolved_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
