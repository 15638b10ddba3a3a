"""A streaming READ of a Cassandra table (``readStream.format("pycassandra")``) whose Spark
driver is SIGKILLed mid-micro-batch, twice, and restarted from its checkpoints: nothing lost,
nothing duplicated.

The Cassandra counterpart of test_faults_stream_read_kill.py, on the same kill loop
(tests/e2e/stream_kill.py) and driver job (tests/e2e/spark_jobs/stream_read_driver.py, run
through fault_driver.py in its own process group with the JVM and Python workers).

A background writer inserts rows the whole time into a table followed by its first
clustering column, a timeuuid the coordinator stamps (``now()``): each micro-batch is a
slice of every partition. The driver reads it with ``starting_position=earliest``, a small
``max_rows_per_trigger`` and ``stream_lag_ms=1000`` into two sinks, each with its own
checkpoint: a parquet file sink and a foreachBatch that appends each micro-batch to a second
Cassandra table (``format("pycassandra")``, mode append).

1. Once each query has committed a micro-batch in this run, and after a seeded random
   pause, the driver is SIGKILLed while a file-sink micro-batch is in flight (its offsets
   are logged, rows passed through the read, no commit). No clean stop: the killed run
   leaves an offsets entry without a commit, and maybe half-written sink files.
2. A new driver starts on the same checkpoints; its first file-sink micro-batch is the
   killed one (a replay of the same window, read again from the table). Killed again the
   same way.
3. The writer stops; once the lag has passed, a last driver runs
   ``trigger(availableNow=True)`` to the end.

Then the truth from outside the connector (scripts/cql.mjs): the committed file sink output
holds every row of the source table exactly once (id multiset equality, then the rows
themselves), each replay read as many rows as the attempt it replaced, and the foreachBatch
replica equals the source, whole table.

The kill moment is random; set SPARK_CONDUIT_FAULT_SEED to replay a failing run's seed
(every failure message names it).
"""

from __future__ import annotations

import functools
import time
from collections import Counter

from fault_jobs import Progress, runtime_directory
from stream_kill import StreamReadKills, fault_seed
from test_cassandra_streaming import LAG_MS, READING_COLUMNS, RowWriter, connection, cql_table, reading, settle
from test_dynamodb_streaming import CLASSIC

MAX_ROWS_PER_TRIGGER = 40
# Rows inserted before the first driver starts.
SEED_ROWS = 6
# A round of inserts (one cql.mjs call) every second or so, bounded; stopped after the last kill.
ROWS_PER_ROUND = 10
# Spark's Arrow batch in the driver (stream_read_driver.session): a micro-batch under this
# many rows is one task and one Arrow batch, so its progress line counts all of its rows.
ARROW_BATCH_ROWS = 10_000


def _rows_per_partition(progress: Progress, batch: int) -> dict[int, int]:
    """Rows of a file-sink micro-batch per partition, from a run's progress lines."""
    rows: dict[int, int] = {}
    for phase, b, partition, _, n in progress.lines:
        if phase == "files" and b == batch:
            rows[partition] = rows.get(partition, 0) + n
    return rows


@CLASSIC
def test_cassandra_stream_read_killed_mid_micro_batch_loses_and_duplicates_nothing(
    spark, cassandra, faults_keyspace, tmp_path
):
    seed = fault_seed()
    ks = faults_keyspace
    started = time.monotonic()

    with (
        cql_table(cassandra, ks, READING_COLUMNS) as source,
        cql_table(cassandra, ks, READING_COLUMNS) as target,
        runtime_directory() as runtime,
    ):
        runs = StreamReadKills(
            tmp_path,
            runtime,
            seed,
            "cassandra-stream-read",
            {
                "format": "pycassandra",
                "options": {
                    **connection(cassandra, ks, source),
                    "stream_column": "at",
                    "starting_position": "earliest",
                    "stream_lag_ms": str(LAG_MS),
                    "max_rows_per_trigger": str(MAX_ROWS_PER_TRIGGER),
                },
                "apply": {"kind": "cassandra_append", "options": connection(cassandra, ks, target)},
            },
        )

        cassandra.cql(*[reading(ks, source, i) for i in range(SEED_ROWS)])
        insert = functools.partial(reading, ks, source)
        writer = RowWriter(cassandra, insert, first_id=SEED_ROWS, per_round=ROWS_PER_ROUND, rounds=300, pause=1.0)
        writer.start()
        try:
            kills = runs.kill_runs(writer)
        finally:
            writer.join(stop=True)
        # Every row's timeuuid is now older than the mark's lag: the last run reads them all.
        settle()

        result, final_seconds = runs.final()
        runs.assert_restarts_replayed_the_killed_batches(kills)
        batches = runs.committed_batches()

        # Each replay read the window of the killed attempt again: as many rows, per partition.
        runs_after = [k["run"] for k in kills[1:]] + ["final"]
        replays = []
        for kill, run in zip(kills, runs_after, strict=True):
            batch = kill["files_batch"]
            killed = _rows_per_partition(Progress.load(runs.progress_file(kill["run"], "files")), batch)
            replayed = _rows_per_partition(Progress.load(runs.progress_file(run, "files")), batch)
            assert sum(killed.values()) < ARROW_BATCH_ROWS, f"batch {batch} too big to compare: {killed} (seed {seed})"
            assert replayed == killed, (
                f"{run} replayed batch {batch} with {replayed} rows per partition, "
                f"the killed {kill['run']} read {killed} (seed {seed})"
            )
            replays.append({"batch": batch, "rows": sum(replayed.values())})

        # The truth, from cql.mjs (not through the connector).
        source_rows = cassandra.rows(ks, source)
        expected = Counter(r["id"] for r in source_rows)
        assert max(expected.values()) == 1, f"an id inserted twice (seed {seed})"
        assert sum(expected.values()) == SEED_ROWS + writer.written, (
            f"{sum(expected.values())} rows in the table, {SEED_ROWS + writer.written} inserted (seed {seed})"
        )
        committed = spark.read.parquet(str(runs.sink))
        got = Counter(row.id for row in committed.select("id").collect())
        lost, extra = expected - got, got - expected
        assert not lost and not extra, (
            f"seed {seed}: {sum(lost.values())} rows lost, {sum(extra.values())} duplicated or foreign; "
            f"lost {sorted(lost)[:5]}, extra {sorted(extra.items())[:5]}"
        )
        want = sorted((r["sensor"], r["at"], r["id"], float(r["value"])) for r in source_rows)
        have = sorted((r.sensor, r.at, r.id, r.value) for r in committed.collect())
        assert have == want, f"the committed rows differ from the source's (seed {seed})"
        replica = cassandra.rows(ks, target)
        assert replica == source_rows, f"the foreachBatch replica differs from the source (seed {seed})"

    figures = {
        "seed": seed,
        "rows": len(source_rows),
        "batches": batches,
        "kills": len(kills),
        "killed": [{k: v for k, v in kill.items() if k != "rounds_written"} for kill in kills],
        "replays": replays,
        "final_files_rows": [b["rows"] for b in result["queries"]["files"]["batches"] if b["rows"]],
        "rounds": writer.done_rounds,
        "final_run_seconds": round(final_seconds, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(f"\ncassandra streaming read kill figures: {figures}")
    assert batches["files"] >= 5, f"too few micro-batches to show anything: {figures}"
