"""A streaming READ of DynamoDB Streams whose Spark driver is SIGKILLed mid-micro-batch,
twice, and restarted from its checkpoints: nothing lost, nothing duplicated.

A background writer makes inserts, updates and deletes on a stream-enabled DynamoDB Local
table the whole time. The driver (tests/e2e/spark_jobs/stream_read_driver.py, run through
fault_driver.py in its own process group with the JVM and Python workers) reads the stream
with ``starting_position=trim_horizon`` and a small ``max_records_per_trigger`` into two
sinks, each with its own checkpoint: a parquet file sink and a foreachBatch that upserts
the last event per key into a target table.

1. Once each query has committed a micro-batch in this run, and after a seeded random
   pause, the driver is SIGKILLed while a file-sink micro-batch is in flight (its offsets
   are logged, rows passed through the read, no commit). No clean stop: the killed run
   leaves an offsets entry without a commit, and maybe half-written sink files.
2. A new driver starts on the same checkpoints; its first file-sink micro-batch is the
   killed one (a replay with the same offsets, read again from the stream). Killed again
   the same way.
3. The writer stops; a last driver runs ``trigger(availableNow=True)`` to the end.

Then the truth from outside the connector (GetRecords through tests/e2e/dynamodb_helper.mjs
and a scan): every stream record appears exactly once in the committed file sink output
(event id multiset equality), and the foreachBatch target equals the source, whole table.

The kill moment is random; set SPARK_CONDUIT_FAULT_SEED to replay a failing run's seed
(every failure message names it).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from pathlib import Path

from fault_jobs import FaultJob, Progress, runtime_directory, wait_for
from test_dynamodb_streaming import (
    CLASSIC,
    ChangeWriter,
    assert_exactly_once,
    change_round,
    stream_table,
    target_table,
)

QUERIES = ("files", "apply")
KILLS = 2
MAX_RECORDS_PER_TRIGGER = 40
# Per Arrow batch, after it is passed on: keeps a micro-batch in flight long enough to be killed.
THROTTLE_SECONDS = 0.5
# Generous for two shared cores (a driver's JVM alone takes 10-20 s to start).
JOB_TIMEOUT = 300


def _batch_ids(log_dir: Path) -> set[int]:
    """Batch ids with a file in a checkpoint log (``offsets`` or ``commits``)."""
    if not log_dir.is_dir():
        return set()
    return {int(p.name) for p in log_dir.iterdir() if p.name.isdigit()}


def _in_flight(checkpoint: Path) -> int | None:
    """The micro-batch a query has planned (offsets logged) and not committed, if any."""
    planned = _batch_ids(checkpoint / "offsets")
    if not planned or max(planned) in _batch_ids(checkpoint / "commits"):
        return None
    return max(planned)


def _sink_batches(sink: Path) -> set[int]:
    """Batch ids the file sink committed (its log, ``_spark_metadata``: ``N`` or ``N.compact``)."""
    log = sink / "_spark_metadata"
    names = [p.name.split(".")[0] for p in log.iterdir()] if log.is_dir() else []
    return {int(name) for name in names if name.isdigit()}


def _uncommitted_files(sink: Path) -> int:
    """Parquet files in the sink that its log (``_spark_metadata``) does not list: what
    killed micro-batches left behind, which ``spark.read.parquet`` must not return."""
    listed = set()
    for log in (sink / "_spark_metadata").glob("*"):
        if log.name.split(".")[0].isdigit():
            for line in log.read_text().splitlines()[1:]:
                listed.add(Path(json.loads(line)["path"]).name)
    return sum(1 for f in sink.glob("*.parquet") if f.name not in listed)


@CLASSIC
def test_stream_read_killed_mid_micro_batch_loses_and_duplicates_nothing(spark, dynamodb, options, tmp_path):
    seed = int(os.environ.get("SPARK_CONDUIT_FAULT_SEED") or random.randrange(1_000_000))
    rng = random.Random(seed)
    sink, checkpoint = tmp_path / "events", tmp_path / "checkpoint"
    started = time.monotonic()

    with stream_table(dynamodb) as source, target_table(dynamodb) as target, runtime_directory() as runtime:

        def progress_file(run: str, name: str) -> Path:
            return tmp_path / f"{run}.{name}.progress"

        def spec(run: str, available_now: bool) -> dict:
            return {
                "name": f"stream-read-{run}",
                "options": {"table_name": source.name, "aws_region": "us-east-1", **options},
                "target_options": {"table_name": target, "aws_region": "us-east-1", **options},
                "sink": str(sink),
                "checkpoint": str(checkpoint),
                "max_records_per_trigger": MAX_RECORDS_PER_TRIGGER,
                "throttle_seconds": THROTTLE_SECONDS,
                "trigger_interval": "1 second",
                "available_now": available_now,
                "progress_files": {name: str(progress_file(run, name)) for name in QUERIES},
                "result_file": str(tmp_path / f"{run}.result.json"),
                "spark_dir": str(tmp_path / f"spark-{run}"),
                "timeout_seconds": JOB_TIMEOUT - 30,
            }

        def run_and_kill(run: str) -> dict:
            """Starts a driver; SIGKILLs it mid file-sink micro-batch once each query has committed one."""
            before = {name: _batch_ids(checkpoint / name / "commits") for name in QUERIES}
            job = FaultJob("stream_read", spec(run, available_now=False), tmp_path, runtime, run)
            run_started = time.monotonic()
            try:
                wait_for(
                    lambda: all(_batch_ids(checkpoint / name / "commits") - before[name] for name in QUERIES),
                    JOB_TIMEOUT - 60,
                    f"a committed micro-batch of each query in run {run} (seed {seed})",
                    job,
                )
                to_commit = time.monotonic() - run_started
                pause = rng.uniform(0.0, 3.0)
                time.sleep(pause)

                def files_batch_under_way() -> int | None:
                    """A batch whose rows are being read and written: rows past the read stage within
                    the last half throttle (so its task sleeps a while yet), not in the sink's log
                    (once it is there, a replay would rightly skip the batch)."""
                    batch = _in_flight(checkpoint / "files")
                    if batch is None or batch in _sink_batches(sink):
                        return None
                    progress = progress_file(run, "files")
                    try:
                        fresh = time.time() - progress.stat().st_mtime < THROTTLE_SECONDS / 2
                    except FileNotFoundError:
                        return None
                    return batch if fresh and Progress.load(progress).rows("files", batch) > 0 else None

                killed = wait_for(files_batch_under_way, 120, f"a file-sink micro-batch under way (seed {seed})", job)
                job.kill()
                writing = writer.thread.is_alive()
            finally:
                job.kill()
            assert writing, f"the writer stopped before the kill of run {run}: the test shows less (seed {seed})"
            # Still uncommitted after the kill: it died mid-micro-batch, not after it.
            assert _in_flight(checkpoint / "files") == killed, f"batch {killed} finished before the kill (seed {seed})"
            assert killed not in _sink_batches(sink), f"the sink committed batch {killed} before the kill (seed {seed})"
            return {
                "run": run,
                "pause": round(pause, 2),
                "files_batch": killed,
                "apply_batch": _in_flight(checkpoint / "apply"),  # None: killed between its micro-batches
                "uncommitted_files": _uncommitted_files(sink),
                "rounds_written": writer.done_rounds,
                "seconds_to_first_commit": round(to_commit, 1),
            }

        change_round(source, 0)
        # Rounds of 13 changes every second or so, bounded; stopped after the last kill.
        writer = ChangeWriter(source, 1, 300, pause=1.0).start()
        try:
            kills = [run_and_kill(f"killed{k + 1}") for k in range(KILLS)]
        finally:
            writer.join(stop=True)
        assert kills[1]["rounds_written"] > kills[0]["rounds_written"], f"no changes between the kills: {kills}"

        final_started = time.monotonic()
        final = FaultJob("stream_read", spec("final", available_now=True), tmp_path, runtime, "final")
        try:
            result = final.wait(JOB_TIMEOUT)
        finally:
            final.kill()
        final_seconds = time.monotonic() - final_started
        for name in QUERIES:
            outcome = result["queries"][name]
            assert outcome["exception"] is None and not outcome["timed_out"], (name, outcome, seed)

        # Each restart began with the micro-batch its predecessor was killed in: the same
        # offsets, read again and written again, never skipped. (foreachBatch reruns a batch
        # whatever it did before; the file sink's batch was not in its log.)
        runs = [k["run"] for k in kills[1:]] + ["final"]
        for kill, run in zip(kills, runs, strict=True):
            for name in QUERIES:
                in_flight = kill[f"{name}_batch"]
                if in_flight is not None:
                    first = min(Progress.load(progress_file(run, name)).batches(name))
                    assert first == in_flight, f"{run} began {name} at {first}, not {in_flight} (seed {seed})"
        batches = {}
        for name in QUERIES:
            committed = _batch_ids(checkpoint / name / "commits")
            assert committed == _batch_ids(checkpoint / name / "offsets") == set(range(len(committed))), name
            batches[name] = len(committed)

        # The truth, from GetRecords and a scan (not through the connector).
        records = source.records()
        expected = Counter(r["eventID"] for r in records)
        assert max(expected.values()) == 1
        assert sum(expected.values()) == 6 + 13 * writer.done_rounds, "a write that is not one stream record"
        got = Counter(row.event_id for row in spark.read.parquet(str(sink)).select("event_id").collect())
        lost, extra = expected - got, got - expected
        assert not lost and not extra, (
            f"seed {seed}: {sum(lost.values())} events lost, {sum(extra.values())} duplicated or foreign; "
            f"lost {list(lost)[:5]}, extra {list(extra.items())[:5]}"
        )
        items = source.items()
        assert dynamodb.items(target) == items, f"the foreachBatch target differs from the source (seed {seed})"
        # The committed events, applied in order to a fresh table, give the source too.
        kinds = assert_exactly_once(spark, source, sink, options, dynamodb)["kinds"]

    figures = {
        "seed": seed,
        "events": len(records),
        "kinds": kinds,
        "items": len(items),
        "batches": batches,
        "kills": len(kills),
        "killed": [{k: v for k, v in kill.items() if k != "rounds_written"} for kill in kills],
        "rounds": writer.done_rounds,
        "final_run_seconds": round(final_seconds, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(f"\nstreaming read kill figures: {figures}")
    assert batches["files"] >= 5, f"too few micro-batches to show anything: {figures}"
