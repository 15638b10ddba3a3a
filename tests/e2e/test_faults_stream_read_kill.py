"""A streaming READ of DynamoDB Streams whose Spark driver is SIGKILLed mid-micro-batch,
twice, and restarted from its checkpoints: nothing lost, nothing duplicated.

A background writer makes inserts, updates and deletes on a stream-enabled DynamoDB Local
table the whole time. The driver (tests/e2e/spark_jobs/stream_read_driver.py, run through
fault_driver.py in its own process group with the JVM and Python workers; the kill loop is
tests/e2e/stream_kill.py, shared with the Cassandra kill test) reads the stream
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

import time
from collections import Counter

from fault_jobs import runtime_directory
from stream_kill import StreamReadKills, fault_seed
from test_dynamodb_streaming import (
    CLASSIC,
    ChangeWriter,
    assert_exactly_once,
    change_round,
    stream_table,
    target_table,
)

MAX_RECORDS_PER_TRIGGER = 40


@CLASSIC
def test_stream_read_killed_mid_micro_batch_loses_and_duplicates_nothing(spark, dynamodb, options, tmp_path):
    seed = fault_seed()
    started = time.monotonic()

    with stream_table(dynamodb) as source, target_table(dynamodb) as target, runtime_directory() as runtime:
        runs = StreamReadKills(
            tmp_path,
            runtime,
            seed,
            "stream-read",
            {
                "format": "dynamodb",
                "options": {
                    "table_name": source.name,
                    "aws_region": "us-east-1",
                    **options,
                    "starting_position": "trim_horizon",
                    "max_records_per_trigger": str(MAX_RECORDS_PER_TRIGGER),
                },
                "apply": {
                    "kind": "dynamodb_changes",
                    "options": {"table_name": target, "aws_region": "us-east-1", **options},
                },
            },
        )
        sink = runs.sink

        change_round(source, 0)
        # Rounds of 13 changes every second or so, bounded; stopped after the last kill.
        writer = ChangeWriter(source, 1, 300, pause=1.0).start()
        try:
            kills = runs.kill_runs(writer)
        finally:
            writer.join(stop=True)

        _, final_seconds = runs.final()
        runs.assert_restarts_replayed_the_killed_batches(kills)
        batches = runs.committed_batches()

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
