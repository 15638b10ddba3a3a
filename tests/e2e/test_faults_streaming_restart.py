"""A checkpointed streaming write killed mid-micro-batch, for DynamoDB and Cassandra.

The source is FILES parquet files of ROWS_PER_FILE known rows, read FILES_PER_TRIGGER
files per micro-batch with ``trigger(availableNow=True)``, so the query has a known end
and stops by itself. The sink is keyed by ``id``, so a replayed micro-batch rewrites the
same items.

1. The driver (tests/e2e/spark_jobs/fault_driver.py: its Python process, JVM and Python
   workers, one process group) is SIGKILLed while a micro-batch is half written: some of
   its rows are in the table, the batch has no commit in the checkpoint.
2. The same query starts again from the same checkpoint in a new process. Its first
   micro-batch is the killed one (a replay with the same offsets). During a later
   micro-batch the embedded service is SIGKILLed: the tasks fail, Spark retries them
   (``local[2,4]``), the shim starts a new service, the query goes on.
3. The query ends by itself after the last file; the whole table is compared with the
   source: nothing lost, nothing extra, every item as written.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fault_jobs import (
    FaultJob,
    Progress,
    cassandra_job_table,
    compare,
    dynamodb_job_table,
    expected_row,
    expected_rows,
    kill_service,
    runtime_directory,
    service_pid,
    wait_for,
)

FILES = 6
ROWS_PER_FILE = 3000
FILES_PER_TRIGGER = 2
ROWS_PER_BATCH = ROWS_PER_FILE * FILES_PER_TRIGGER
TOTAL = FILES * ROWS_PER_FILE
BATCHES = FILES // FILES_PER_TRIGGER  # batch 0 commits, 1 is killed, 2 meets a service kill
JOB_TIMEOUT = 300


def _write_input(directory: Path) -> None:
    directory.mkdir()
    schema = pa.schema([("id", pa.int64(), False), ("name", pa.string()), ("v", pa.int64()), ("payload", pa.string())])
    for f in range(FILES):
        rows = [expected_row(i) for i in range(f * ROWS_PER_FILE, (f + 1) * ROWS_PER_FILE)]
        table = pa.Table.from_pylist(rows, schema=schema)
        staging = directory / f".part-{f:03d}.parquet"
        pq.write_table(table, staging)
        staging.rename(directory / f"part-{f:03d}.parquet")
        # Distinct modification times keep the file source's order stable.
        time.sleep(0.01)


def _batch_ids(log_dir: Path) -> set[int]:
    """Batch ids with a file in a checkpoint log (``offsets`` or ``commits``)."""
    if not log_dir.is_dir():
        return set()
    return {int(p.name) for p in log_dir.iterdir() if p.name.isdigit()}


def _scenario(tmp_path: Path, fmt: str, options: dict, count, table_rows) -> dict:
    input_dir = tmp_path / "input"
    _write_input(input_dir)
    checkpoint = tmp_path / "checkpoint"
    progress_file = tmp_path / "progress.log"

    def spec(run: str) -> dict:
        return {
            "name": f"stream-{fmt}-{run}",
            "format": fmt,
            "options": options,
            "input_dir": str(input_dir),
            "checkpoint": str(checkpoint),
            "files_per_trigger": FILES_PER_TRIGGER,
            "arrow_batch_rows": 500,
            "throttle_seconds": 0.5,
            "progress_file": str(progress_file),
            "result_file": str(tmp_path / f"{run}.result.json"),
            "spark_dir": str(tmp_path / f"spark-{run}"),
            "timeout_seconds": JOB_TIMEOUT - 30,
        }

    started = time.monotonic()
    with runtime_directory() as runtime:
        # 1. Kill the driver while micro-batch 1 is partly written.
        first = FaultJob("stream", spec("first"), tmp_path, runtime, "first")
        try:

            def half_way():
                """(batch, table count) once rows of the micro-batch after a committed one
                are in the table (the count itself, not the source's progress: rows reach
                the table some way behind the source)."""
                done = _batch_ids(checkpoint / "commits")
                if not done:
                    return None
                batch = max(done) + 1
                if batch >= BATCHES - 1:
                    pytest.fail(f"missed the chance to kill the driver before the last micro-batch ({batch})")
                rows = count()
                return (batch, rows) if rows > len(done) * ROWS_PER_BATCH else None

            killed_batch, rows_at_kill = wait_for(half_way, 240, "rows of a micro-batch after the first", first)
            first.kill()
        finally:
            first.kill()
        committed = _batch_ids(checkpoint / "commits")
        rows_committed = len(committed) * ROWS_PER_BATCH
        assert killed_batch not in committed, "the micro-batch finished before the kill"
        assert killed_batch in _batch_ids(checkpoint / "offsets")
        assert committed == set(range(killed_batch))
        # Part of the killed micro-batch is visible in the table: a replay will write it again.
        assert rows_committed < rows_at_kill < rows_committed + ROWS_PER_BATCH, (rows_at_kill, rows_committed)
        service_before = service_pid(runtime)
        assert service_before is not None  # the service outlives a killed driver

        # 2. Restart from the checkpoint; kill the service during a later micro-batch.
        second = FaultJob("stream", spec("second"), tmp_path, runtime, "second")
        try:

            def later_batch_half_way():
                batch = max(_batch_ids(checkpoint / "commits"), default=-1) + 1
                rows = Progress.load(progress_file).rows("stream", batch, attempt=0)
                return batch if batch > killed_batch and ROWS_PER_BATCH // 4 <= rows < ROWS_PER_BATCH else None

            service_killed_batch = wait_for(later_batch_half_way, 240, "a later micro-batch to be half way", second)
            killed_service = kill_service(runtime)
            result = second.wait(JOB_TIMEOUT)
            service_after = service_pid(runtime)
        finally:
            second.kill()

    seconds = time.monotonic() - started
    progress = Progress.load(progress_file)
    assert result["exception"] is None and not result["timed_out"], result
    restarted = [b["batchId"] for b in result["batches"]]
    assert restarted[0] == killed_batch, f"the restart did not replay batch {killed_batch}: {restarted}"
    assert restarted == list(range(killed_batch, BATCHES)), restarted
    assert _batch_ids(checkpoint / "commits") == set(range(BATCHES))
    assert killed_service == service_before
    assert service_after is not None and service_after != killed_service
    assert progress.retried("stream", service_killed_batch), "no task of the micro-batch was retried"

    lost, extra, wrong = compare(table_rows(), expected_rows(range(TOTAL)))
    assert (lost, extra, wrong) == (0, 0, [])
    figures = {
        "format": fmt,
        "rows": TOTAL,
        "driver_killed_in_batch": killed_batch,
        "rows_committed_before_kill": rows_committed,
        "rows_in_table_at_kill": rows_at_kill,
        "replayed_batch": restarted[0],
        "service_killed_in_batch": service_killed_batch,
        "lost": lost,
        "extra": extra,
        "seconds": round(seconds, 1),
    }
    print(f"\nstreaming restart figures: {figures}")
    return figures


def test_dynamodb_streaming_write_killed_and_restarted(dynamodb, tmp_path):
    with dynamodb_job_table(dynamodb) as table:
        _scenario(tmp_path, table.format, table.options, table.count, table.rows)


def test_cassandra_streaming_write_killed_and_restarted(cassandra, faults_keyspace, tmp_path):
    with cassandra_job_table(cassandra, faults_keyspace) as table:
        _scenario(tmp_path, table.format, table.options, table.count, table.rows)
