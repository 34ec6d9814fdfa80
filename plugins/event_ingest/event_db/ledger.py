"""The run ledger: one ``ingest_runs`` row per DAG run, started by discovery, finished by the summary.

Part of :class:`~event_ingest.event_db.base.EventDb`, whose statements' building blocks it uses.
"""

from __future__ import annotations

from event_ingest.event_db import schema
from event_ingest.event_db.rows import utc_now
from event_ingest.event_db.schema import RUNS


class RunLedger:
    """What the run ledger does, for :class:`~event_ingest.event_db.base.EventDb`."""

    def start_run(
        self, *, dag_run_id: str, dag_id: str, run_type: str, first_day: str | None, last_day: str | None
    ) -> None:
        """Record that a run started (a rerun of the same DAG run starts its row afresh)."""
        row = (
            dag_run_id,
            dag_id,
            run_type,
            first_day,
            last_day,
            utc_now(),
            None,
            "running",
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        )

        def write() -> None:
            with self.transaction() as cursor:
                self._insert(cursor, RUNS, [row], self._upsert(RUNS, schema.RUN_STARTED))

        self._with_retries("the run ledger", write)

    def finish_run(self, *, dag_run_id: str, state: str, counts: dict[str, int], failed_batches: int) -> None:
        """Record how a run ended: its state and counts."""
        names = [*schema.RUN_COUNTS, "failed_batches"]
        values = [counts.get(name, 0) for name in schema.RUN_COUNTS] + [failed_batches]

        def write() -> None:
            with self.transaction() as cursor:
                cursor.execute(
                    f"UPDATE ingest_runs SET finished_at = {self.mark}, state = {self.mark}, "
                    + ", ".join(f"{name} = {self.mark}" for name in names)
                    + f" WHERE dag_run_id = {self.mark}",
                    [utc_now(), state, *values, dag_run_id],
                )

        self._with_retries("the run ledger", write)
