"""event_ingest: drive-session audio tags from S3 into an event database.

The package behind the ``event_ingest`` and ``event_ingest_on_upload`` DAGs. Airflow puts
``plugins/`` on ``sys.path`` (or ``pip install .`` installs it), so DAG files and tests import it
as ``event_ingest``. The stable API is what ``__all__`` names; its exceptions are in
:mod:`event_ingest.errors`:

- :class:`AwsHelper`, :class:`EventDb`: the old job's names, on the new pieces;
- :class:`S3Source` (the bucket), :class:`SessionAssembler` (one session, inside its bulkhead),
  :class:`BatchRunner` (the steps over a batch), :class:`Place` and :func:`ingest` (a whole run
  in one process);
- :func:`event_db_for` (the backend of a connection), :data:`EVENTS_ASSET` (what downstream DAGs
  schedule on).
"""

from event_ingest.assembler import SessionAssembler
from event_ingest.assets import EVENTS_ASSET
from event_ingest.aws_helper import AwsHelper
from event_ingest.event_db import EventDb, event_db_for
from event_ingest.runner import BatchRunner, BatchSummary, Place, ingest
from event_ingest.source import S3Source

__all__ = [
    "EVENTS_ASSET",
    "AwsHelper",
    "BatchRunner",
    "BatchSummary",
    "EventDb",
    "Place",
    "S3Source",
    "SessionAssembler",
    "event_db_for",
    "ingest",
]
