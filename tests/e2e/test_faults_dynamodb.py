"""DynamoDB under injected faults, through real PySpark: the service talks to DynamoDB Local
through the fault proxy (tests/support/fault-proxy), which throttles, fails, withholds
UnprocessedItems, resets connections mid-response and slows responses. After each job the
WHOLE table is read straight from DynamoDB Local (not through the proxy, not through the
connector) and compared with the source: exact count, no row missing, no extra row, values
equal. Each test also asserts that its faults really fired (a fault test whose faults never
happened proves nothing). That the writer's row counts do not double when a reset write is
resent is checked below Spark, in tests/integration/fault-proxy-dynamodb.test.ts.

Classic Spark only (the big runs are costly on two cores; the Connect path shares the same
shim and service code). The figures are in docs/reliability.md.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlparse

import pytest
from e2e_support import CREDENTIALS, assert_error, failure
from fault_proxy import FaultProxy

pytestmark = pytest.mark.parametrize("spark", ["classic"], indirect=True)

BIG_ROWS = 100_000
SMALL_ROWS = 5_000
PARTITIONS = 2


@pytest.fixture(scope="module")
def proxy(dynamodb):
    target = urlparse(dynamodb.endpoint)
    with FaultProxy("http", target.hostname, target.port, max_seconds=900) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def faulty(proxy):
    """The proxy with no faults before and after the test."""
    proxy.configure({"faults": []})
    yield proxy
    proxy.configure({"faults": []})


@pytest.fixture
def table(dynamodb, table_name):
    dynamodb.create_table(table_name, ("pk", "S"), ("sk", "N"))
    yield table_name
    dynamodb.drop_table(table_name)


def source(spark, rows: int):
    """``rows`` rows in PARTITIONS partitions (so PARTITIONS Spark tasks), a composite key."""
    return spark.range(0, rows, 1, PARTITIONS).selectExpr(
        "concat('p', cast(id % 997 as string)) as pk",
        "id as sk",
        "concat('name-', cast(id as string)) as name",
        "cast(id as double) / 4 as amount",
        "id % 3 = 0 as flag",
    )


def expected(rows: int) -> dict[tuple[str, int], dict]:
    return {(f"p{i % 997}", i): {"name": f"name-{i}", "amount": i / 4, "flag": i % 3 == 0} for i in range(rows)}


def stored(dynamodb, table: str) -> tuple[dict[tuple[str, int], dict], int]:
    """The whole table read straight from DynamoDB Local, and the number of items scanned."""
    items = dynamodb.raw_items(table)
    out = {}
    for item in items:
        key = (item["pk"]["S"], int(item["sk"]["N"]))
        out[key] = {"name": item["name"]["S"], "amount": float(item["amount"]["N"]), "flag": item["flag"]["BOOL"]}
    return out, len(items)


def compare(dynamodb, table: str, rows: int) -> dict[str, int]:
    """Asserts the table equals the source; returns the figures for the report."""
    want = expected(rows)
    got, scanned = stored(dynamodb, table)
    missing_keys = want.keys() - got.keys()
    extra_keys = got.keys() - want.keys()
    wrong = [key for key in want.keys() & got.keys() if got[key] != want[key]]
    figures = {
        "rows": rows,
        "stored": scanned,
        "missing": len(missing_keys),
        "extra": len(extra_keys),
        "duplicated": scanned - len(got),
        "wrong": len(wrong),
    }
    assert figures == {"rows": rows, "stored": rows, "missing": 0, "extra": 0, "duplicated": 0, "wrong": 0}, (
        figures,
        sorted(missing_keys)[:5],
        sorted(extra_keys)[:5],
        wrong[:5],
    )
    return figures


def write(df, table: str, proxy: FaultProxy, **extra: str) -> float:
    started = time.monotonic()
    (
        df.write.format("dynamodb")
        .mode("append")
        .option("table_name", table)
        .option("aws_region", "us-east-1")
        .option("endpoint_url", proxy.url)
        .options(**CREDENTIALS)
        .options(**extra)
        .save()
    )
    return time.monotonic() - started


def fired(before: dict[str, int], after: dict[str, int], kind: str) -> int:
    return after.get(kind, 0) - before.get(kind, 0)


def report(name: str, figures: dict, seconds: float, faults: dict[str, int]) -> None:
    print(f"\n[fault report] {name}: {figures} in {seconds:.1f} s; faults {faults}")


MIX = [
    {"kind": "provisioned_throughput_exceeded", "probability": 0.03},
    {"kind": "throttling", "probability": 0.03},
    {"kind": "internal_server_error", "probability": 0.02},
    {"kind": "service_unavailable", "probability": 0.02},
    {"kind": "unprocessed_items", "probability": 0.05, "fraction": 0.5},
    {"kind": "reset_mid_response", "probability": 0.01},
    {"kind": "slow_response", "probability": 0.005, "delayMs": 300},
]
KINDS = [rule["kind"] for rule in MIX]


def test_big_write_with_every_fault_loses_and_duplicates_nothing(spark, faulty, table, dynamodb):
    faulty.configure({"seed": 11, "faults": MIX})
    before = faulty.stats()
    seconds = write(source(spark, BIG_ROWS), table, faulty)
    after = faulty.stats()
    faulty.configure({"faults": []})
    counts = {kind: fired(before, after, kind) for kind in KINDS}
    for kind, count in counts.items():
        assert count > 0, f"{kind} never fired: {counts}"
    figures = compare(dynamodb, table, BIG_ROWS)
    report("mix", figures, seconds, counts)


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "provisioned_throughput_exceeded", "probability": 0.2},
        {"kind": "throttling", "probability": 0.2},
        {"kind": "internal_server_error", "probability": 0.1},
        {"kind": "service_unavailable", "probability": 0.1},
        {"kind": "unprocessed_items", "probability": 0.3, "fraction": 0.8},
        {"kind": "reset_mid_response", "probability": 0.05},
        {"kind": "slow_response", "probability": 0.05, "delayMs": 200},
    ],
    ids=lambda rule: rule["kind"],
)
def test_write_under_one_fault(spark, faulty, table, dynamodb, rule):
    faulty.configure({"seed": 5, "faults": [{**rule, "operation": "BatchWriteItem"}]})
    before = faulty.stats()
    seconds = write(source(spark, SMALL_ROWS), table, faulty)
    count = fired(before, faulty.stats(), rule["kind"])
    faulty.configure({"faults": []})
    assert count > 0, f"{rule['kind']} never fired"
    figures = compare(dynamodb, table, SMALL_ROWS)
    report(rule["kind"], figures, seconds, {rule["kind"]: count})


def test_read_with_faults_returns_every_row_once(spark, faulty, table, dynamodb):
    # Loaded without faults, then read through the proxy while scans fail, throttle and reset.
    write(source(spark, SMALL_ROWS), table, faulty)
    faulty.configure(
        {
            "seed": 3,
            "faults": [
                # A table this size is one page per segment: the first scans get each fault in
                # turn (a request is retried by the SDK up to 8 times, here at most 4).
                {"kind": "reset_mid_response", "every": 2, "operation": "Scan", "max": 2},
                {"kind": "throttling", "every": 2, "operation": "Scan", "max": 2},
                {"kind": "internal_server_error", "every": 2, "operation": "Scan", "max": 2},
            ],
        }
    )
    before = faulty.stats()
    rows = (
        spark.read.format("dynamodb")
        .option("table_name", table)
        .option("aws_region", "us-east-1")
        .option("endpoint_url", faulty.url)
        .option("total_segments", "4")
        .options(**CREDENTIALS)
        .load()
        .select("pk", "sk", "name", "amount", "flag")
        .collect()
    )
    after = faulty.stats()
    faulty.configure({"faults": []})
    for kind in ("throttling", "internal_server_error", "reset_mid_response"):
        assert fired(before, after, kind) > 0, f"{kind} never fired: {after}"
    keys = [(row.pk, row.sk) for row in rows]
    assert len(keys) == SMALL_ROWS
    assert len(set(keys)) == SMALL_ROWS, "a row was returned twice"
    got = {(row.pk, row.sk): {"name": row.name, "amount": row.amount, "flag": row.flag} for row in rows}
    assert got == expected(SMALL_ROWS)


def test_faults_beyond_the_retry_budget_fail_clearly_and_in_bounded_time(spark, faulty, table):
    faulty.configure({"faults": [{"kind": "throttling", "every": 1, "operation": "BatchWriteItem"}]})
    started = time.monotonic()
    text = failure(lambda: write(source(spark, 200).coalesce(1), table, faulty, max_retry_seconds="3"))
    seconds = time.monotonic() - started
    throttled = faulty.stats().get("throttling", 0)
    faulty.configure({"faults": []})
    assert_error(text, "WRITE_RETRIES_EXHAUSTED", table, "max_retry_seconds", "ThrottlingException")
    assert throttled > 0
    # max_retry_seconds=3 plus the SDK's own retries of the last attempt: well under a minute.
    assert seconds < 60, seconds
    shown = re.sub(r"\s+", " ", text)[:300]
    print(f"\n[fault report] 100% throttling: failed after {seconds:.1f} s: {shown}")
