"""event_ingest: drive-session audio tags from S3 into an event database.

The package behind the ``event_ingest`` DAG. Airflow puts ``plugins/`` on
``sys.path``, so DAG files and tests import it as ``event_ingest``. I/O lives
behind :class:`~event_ingest.aws_helper.AwsHelper` (S3) and
:class:`~event_ingest.event_db.base.EventDb` (the database); the operators in
:mod:`event_ingest.operators` wire them into tasks.
"""
