"""One real event-driven stack for the tests of ``event_ingest_on_upload``.

moto's server as S3 and SQS, a MariaDB database as the event database, and a real Airflow (api-server,
scheduler, dag-processor, triggerer; LocalExecutor on PostgreSQL) whose triggerer watches the queue.
Starting it takes about a minute, so the package shares one; each test uploads sessions of its own
days and waits with :meth:`UploadStack.settle` for the runs they make.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.on_upload.uploads import DAG_ID, UploadStack, sqs_client
from tools.airflow_local import AirflowStack
from tools.services import MariaDbServer, MotoS3

#: moto's account: the queue's ARN in the bucket's notification configuration.
ACCOUNT = "123456789012"


@pytest.fixture(scope="package")
def moto_aws() -> Iterator[MotoS3]:
    """moto's server, S3 and SQS on one endpoint."""
    with MotoS3() as server:
        yield server


@pytest.fixture(scope="package")
def uploads(
    moto_aws: MotoS3, mariadb: MariaDbServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UploadStack]:
    """The stack, the DAG unpaused, the bucket notifying the queue, and the first (empty) run done."""
    name = f"u{uuid.uuid4().hex[:12]}"
    bucket = moto_aws.create_bucket(name)
    queue_url = sqs_client(moto_aws).create_queue(QueueName=name)["QueueUrl"]
    database = mariadb.create_database(name)
    home = Path(tmp_path_factory.mktemp("on-upload-airflow"))
    env = {
        "EVENT_INGEST_SQS_QUEUE_URL": queue_url,
        # The trigger's default connection, pointed at moto.
        "AIRFLOW_CONN_AWS_DEFAULT": moto_aws.airflow_conn_json(),
        "AIRFLOW_CONN_EVENT_INGEST_S3": moto_aws.airflow_conn_json(),
        "AIRFLOW_CONN_EVENT_INGEST_DB": mariadb.airflow_conn_uri(database),
        "AIRFLOW_VAR_EVENT_INGEST_BUCKET": bucket,
        "AIRFLOW_VAR_EVENT_INGEST_DATA_DIR": str(home / "data"),
        "EVENT_INGEST_RETRY_DELAY_S": "1",
    }
    db = mariadb.connect(database)
    db.autocommit(True)
    try:
        with AirflowStack(home / "airflow", env=env) as stack:
            stack.wait_for_dag(DAG_ID)
            stack.unpause(DAG_ID)
            pipe = UploadStack(
                stack=stack,
                s3=moto_aws,
                bucket=bucket,
                queue_url=queue_url,
                queue_arn=f"arn:aws:sqs:{moto_aws.region}:{ACCOUNT}:{name}",
                db=db,
            )
            # S3's s3:TestEvent makes a first run, which finds nothing: the stack is then warm.
            pipe.notify_reports()
            pipe.settle()
            yield pipe
    finally:
        db.close()
        mariadb.drop_database(database)
