"""The embedded service SIGKILLed in the middle of a write task and of a read task, for
DynamoDB and Cassandra, through real PySpark with task retries (``local[2,4]``).

One Spark driver (tests/e2e/spark_jobs/fault_driver.py, a separate process) writes a
generated table (20,000 rows for DynamoDB, 50,000 for Cassandra) in 2 tasks, then reads
it back in 2 tasks into parquet. While each job is demonstrably half way (rows in the
table, fewer than all; rows read, fewer than all) the test kills the service. The tasks
fail with SERVICE_UNAVAILABLE, Spark runs them again, the shim starts a new service, and:

- the table equals the source row for row (nothing lost, nothing extra);
- the read's output holds every row exactly once (Spark drops a failed task's output).

The kill is proven to have landed mid-job: the table count just before it is strictly
between 0 and all, Spark's status tracker reports failed tasks for both jobs, the retried
attempts appear in the progress log, and a new service pid runs afterwards.
"""

from __future__ import annotations

import time

import pyarrow.parquet as pq
from fault_jobs import (
    FaultJob,
    Progress,
    cassandra_job_table,
    compare,
    dynamodb_job_table,
    expected_rows,
    kill_service,
    runtime_directory,
    service_pid,
    wait_for,
)

# Sizes and throttles keep each job running for seconds even on a fast machine, so a kill
# always finds tasks at work (the tests fail, never pass vacuously, when it does not).
DYNAMODB_ROWS = 20_000
CASSANDRA_ROWS = 50_000
JOB_TIMEOUT = 300


def _at_least(value: int, floor: int) -> int | None:
    return value if value >= floor else None


def _scenario(
    tmp_path, fmt: str, options: dict, read_options: dict, count, table_rows, rows: int, throttle: tuple[float, float]
) -> dict:
    """Runs the write-then-read job, killing the service in each; ``throttle`` slows the
    (write source, read consumer) per 1,000-row Arrow batch so a kill finds a task running."""
    progress_file = tmp_path / "progress.log"
    with runtime_directory() as runtime:
        spec = {
            "name": f"service-kill-{fmt}",
            "format": fmt,
            "options": options,
            "read_options": read_options,
            "rows": rows,
            "partitions": 2,
            "arrow_batch_rows": 1000,
            "write_throttle_seconds": throttle[0],
            "read_throttle_seconds": throttle[1],
            "phases": ["write", "read"],
            "progress_file": str(progress_file),
            "result_file": str(tmp_path / "result.json"),
            "read_output": str(tmp_path / "read-output"),
            "spark_dir": str(tmp_path / "spark"),
        }
        job = FaultJob("batch", spec, tmp_path, runtime, "batch")
        try:
            started = time.monotonic()
            # Kill mid-write: as soon as the table holds a twentieth of the rows.
            rows_at_kill = wait_for(lambda: _at_least(count(), rows // 20), 240, "rows in the table", job)
            write_pid = kill_service(runtime)
            write_progress = Progress.load(progress_file)

            # Kill mid-read: as soon as the first rows came back from the service (the
            # consumer is throttled, so the tasks are still streaming).
            wait_for(lambda: Progress.load(progress_file).rows("read") > 0, 240, "the read to start", job)
            read_pid = kill_service(runtime)
            read_progress = Progress.load(progress_file)

            result = job.wait(JOB_TIMEOUT)
            new_pid = service_pid(runtime)
        finally:
            job.kill()
        seconds = time.monotonic() - started

    progress = Progress.load(progress_file)
    # The kills landed in the middle, not after the jobs.
    assert 0 < rows_at_kill < rows, f"{rows_at_kill} rows in the table when the service was killed"
    assert write_progress.rows("write", attempt=0) <= rows
    assert read_progress.rows("read", attempt=0) < rows
    assert result["write"]["failed_tasks"] >= 1, result
    assert result["read"]["failed_tasks"] >= 1, result
    assert progress.retried("write") and progress.retried("read")
    assert new_pid is not None and new_pid not in (write_pid, read_pid)
    assert write_pid != read_pid  # the write's retry started a new service, which the read used

    expected = expected_rows(range(rows))
    lost, extra, wrong = compare(table_rows(), expected)
    assert (lost, extra, wrong) == (0, 0, [])

    read_back = pq.read_table(spec["read_output"]).to_pylist()
    read_lost, read_extra, read_wrong = compare(read_back, expected)
    assert len(read_back) == rows
    assert (read_lost, read_extra, read_wrong) == (0, 0, [])

    figures = {
        "format": fmt,
        "rows": rows,
        "rows_in_table_at_write_kill": rows_at_kill,
        "rows_read_at_read_kill": read_progress.rows("read"),
        "write_failed_tasks": result["write"]["failed_tasks"],
        "read_failed_tasks": result["read"]["failed_tasks"],
        "write_seconds": round(result["write"]["seconds"], 1),
        "read_seconds": round(result["read"]["seconds"], 1),
        "total_seconds": round(seconds, 1),
        "lost": lost,
        "extra": extra,
        "read_lost": read_lost,
        "read_extra": read_extra,
    }
    print(f"\nservice kill figures: {figures}")
    return figures


def test_dynamodb_service_killed_mid_write_and_mid_read(dynamodb, tmp_path):
    with dynamodb_job_table(dynamodb) as table:
        _scenario(
            tmp_path,
            table.format,
            table.options,
            # Small pages: the read takes many round trips, so the kill finds it streaming
            # (a whole fast partition would otherwise fit in the buffers between processes).
            {"total_segments": "2", "read_page_size": "10"},
            table.count,
            table.rows,
            rows=DYNAMODB_ROWS,
            throttle=(0.25, 0.1),
        )


def test_cassandra_service_killed_mid_write_and_mid_read(cassandra, faults_keyspace, tmp_path):
    with cassandra_job_table(cassandra, faults_keyspace) as table:
        _scenario(
            tmp_path,
            table.format,
            table.options,
            {"read_partitions": "2", "read_page_size": "10"},
            table.count,
            table.rows,
            rows=CASSANDRA_ROWS,
            throttle=(0.2, 0.05),
        )
