"""The kill loop of the streaming-read kill tests (test_faults_stream_read_kill.py for DynamoDB
Streams, test_faults_cassandra_stream_read_kill.py for a Cassandra table followed by a column):
``stream_read`` drivers (spark_jobs/stream_read_driver.py, through fault_driver.py) SIGKILLed
while a file-sink micro-batch is in flight, started again on the same checkpoints, then run to
the end with ``trigger(availableNow=True)``; and what Spark's checkpoint and the file sink's log
say about the micro-batches, read from the files (not through Spark).

Each test names the format, its stream options and how the ``apply`` query writes (the
``source`` of StreamReadKills); the loop, the in-flight detection and the checks on the
checkpoints are the same for every format.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from e2e_support import BackgroundRounds
from fault_jobs import FaultJob, Progress, wait_for

QUERIES = ("files", "apply")
KILLS = 2
# Per Arrow batch, after it is passed on: keeps a micro-batch in flight long enough to be killed.
THROTTLE_SECONDS = 0.5
# Generous for two shared cores (a driver's JVM alone takes 10-20 s to start).
JOB_TIMEOUT = 300


def fault_seed() -> int:
    """The seed of the kill moments: SPARK_CONDUIT_FAULT_SEED replays a failing run's."""
    return int(os.environ.get("SPARK_CONDUIT_FAULT_SEED") or random.randrange(1_000_000))


def batch_ids(log_dir: Path) -> set[int]:
    """Batch ids with a file in a checkpoint log (``offsets`` or ``commits``)."""
    if not log_dir.is_dir():
        return set()
    return {int(p.name) for p in log_dir.iterdir() if p.name.isdigit()}


def in_flight(checkpoint: Path) -> int | None:
    """The micro-batch a query has planned (offsets logged) and not committed, if any."""
    planned = batch_ids(checkpoint / "offsets")
    if not planned or max(planned) in batch_ids(checkpoint / "commits"):
        return None
    return max(planned)


def sink_batches(sink: Path) -> set[int]:
    """Batch ids the file sink committed (its log, ``_spark_metadata``: ``N`` or ``N.compact``)."""
    log = sink / "_spark_metadata"
    names = [p.name.split(".")[0] for p in log.iterdir()] if log.is_dir() else []
    return {int(name) for name in names if name.isdigit()}


def uncommitted_files(sink: Path) -> int:
    """Parquet files in the sink that its log (``_spark_metadata``) does not list: what
    killed micro-batches left behind, which ``spark.read.parquet`` must not return."""
    listed = set()
    for log in (sink / "_spark_metadata").glob("*"):
        if log.name.split(".")[0].isdigit():
            for line in log.read_text().splitlines()[1:]:
                listed.add(Path(json.loads(line)["path"]).name)
    return sum(1 for f in sink.glob("*.parquet") if f.name not in listed)


class StreamReadKills:
    """The driver runs of one kill test, all on one parquet sink (``sink``) and one checkpoint
    per query (``checkpoint/files``, ``checkpoint/apply``) under ``workdir``.

    ``source`` is the format's part of the driver's spec: ``format``, ``options`` (the
    readStream options, starting position and read limit included) and ``apply`` (how the
    foreachBatch query writes; see stream_read_driver.apply_function). Every failure names
    the seed.
    """

    def __init__(self, workdir: Path, runtime: Path, seed: int, name: str, source: dict) -> None:
        self.workdir = workdir
        self.runtime = runtime
        self.seed = seed
        self.rng = random.Random(seed)
        self.name = name
        self.source = source
        self.sink = workdir / "sink"
        self.checkpoint = workdir / "checkpoint"
        # In the captured output of any failure, whatever its message.
        print(f"\nSPARK_CONDUIT_FAULT_SEED={seed}")

    def progress_file(self, run: str, name: str) -> Path:
        return self.workdir / f"{run}.{name}.progress"

    def spec(self, run: str, available_now: bool) -> dict:
        return {
            "name": f"{self.name}-{run}",
            **self.source,
            "sink": str(self.sink),
            "checkpoint": str(self.checkpoint),
            "throttle_seconds": THROTTLE_SECONDS,
            "trigger_interval": "1 second",
            "available_now": available_now,
            "progress_files": {name: str(self.progress_file(run, name)) for name in QUERIES},
            "result_file": str(self.workdir / f"{run}.result.json"),
            "spark_dir": str(self.workdir / f"spark-{run}"),
            "timeout_seconds": JOB_TIMEOUT - 30,
        }

    def run_and_kill(self, run: str, writer: BackgroundRounds) -> dict:
        """Starts a driver; SIGKILLs it mid file-sink micro-batch once each query has committed one."""
        seed, checkpoint, sink = self.seed, self.checkpoint, self.sink
        before = {name: batch_ids(checkpoint / name / "commits") for name in QUERIES}
        job = FaultJob("stream_read", self.spec(run, available_now=False), self.workdir, self.runtime, run)
        run_started = time.monotonic()
        try:
            wait_for(
                lambda: all(batch_ids(checkpoint / name / "commits") - before[name] for name in QUERIES),
                JOB_TIMEOUT - 60,
                f"a committed micro-batch of each query in run {run} (seed {seed})",
                job,
            )
            to_commit = time.monotonic() - run_started
            pause = self.rng.uniform(0.0, 3.0)
            time.sleep(pause)

            def files_batch_under_way() -> int | None:
                """A batch whose rows are being read and written: rows past the read stage within
                the last half throttle (so its task sleeps a while yet), not in the sink's log
                (once it is there, a replay would rightly skip the batch)."""
                batch = in_flight(checkpoint / "files")
                if batch is None or batch in sink_batches(sink):
                    return None
                progress = self.progress_file(run, "files")
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
        assert in_flight(checkpoint / "files") == killed, f"batch {killed} finished before the kill (seed {seed})"
        assert killed not in sink_batches(sink), f"the sink committed batch {killed} before the kill (seed {seed})"
        return {
            "run": run,
            "pause": round(pause, 2),
            "files_batch": killed,
            "apply_batch": in_flight(checkpoint / "apply"),  # None: killed between its micro-batches
            "uncommitted_files": uncommitted_files(sink),
            "rounds_written": writer.done_rounds,
            "seconds_to_first_commit": round(to_commit, 1),
        }

    def kill_runs(self, writer: BackgroundRounds) -> list[dict]:
        """KILLS drivers, each killed mid file-sink micro-batch while ``writer`` writes;
        the writer must have written between the kills."""
        kills = [self.run_and_kill(f"killed{k + 1}", writer) for k in range(KILLS)]
        assert kills[1]["rounds_written"] > kills[0]["rounds_written"], (
            f"nothing written between the kills (seed {self.seed}): {kills}"
        )
        return kills

    def final(self) -> tuple[dict, float]:
        """A last driver with ``trigger(availableNow=True)``, run to its end: (its result, seconds)."""
        started = time.monotonic()
        job = FaultJob("stream_read", self.spec("final", available_now=True), self.workdir, self.runtime, "final")
        try:
            result = job.wait(JOB_TIMEOUT)
        finally:
            job.kill()
        seconds = time.monotonic() - started
        for name in QUERIES:
            outcome = result["queries"][name]
            assert outcome["exception"] is None and not outcome["timed_out"], (name, outcome, self.seed)
        return result, seconds

    def assert_restarts_replayed_the_killed_batches(self, kills: list[dict]) -> None:
        """Each restart began with the micro-batch its predecessor was killed in: the same
        offsets, read again and written again, never skipped. (foreachBatch reruns a batch
        whatever it did before; the file sink's batch was not in its log.)"""
        runs = [k["run"] for k in kills[1:]] + ["final"]
        for kill, run in zip(kills, runs, strict=True):
            for name in QUERIES:
                killed = kill[f"{name}_batch"]
                if killed is not None:
                    first = min(Progress.load(self.progress_file(run, name)).batches(name))
                    assert first == killed, f"{run} began {name} at {first}, not {killed} (seed {self.seed})"

    def committed_batches(self) -> dict[str, int]:
        """Micro-batches per query, once every run is over: every planned batch committed,
        numbered from 0 without a gap."""
        batches = {}
        for name in QUERIES:
            committed = batch_ids(self.checkpoint / name / "commits")
            planned = batch_ids(self.checkpoint / name / "offsets")
            assert committed == planned == set(range(len(committed))), (name, self.seed)
            batches[name] = len(committed)
        return batches
