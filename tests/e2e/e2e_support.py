"""Helpers for the end-to-end tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("dynamodb_helper.mjs")
IN_CI = os.environ.get("CI", "").lower() == "true"
CREDENTIALS = {"aws_access_key_id": "dummy", "aws_secret_access_key": "dummy"}


def missing(reason: str) -> None:
    """Missing infrastructure: a failure in CI, a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: missing infrastructure is a failure)", pytrace=False)
    pytest.skip(reason)


def is_connect(session) -> bool:
    return type(session).__module__.startswith("pyspark.sql.connect")


def run(command: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)


class DynamoDb:
    """Test access to DynamoDB Local (through the AWS SDK for JavaScript)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def _call(self, command: str, args: dict | None = None) -> str:
        result = run(["node", str(HELPER), self.endpoint, command, json.dumps(args or {})])
        if result.returncode != 0:
            raise RuntimeError(f"dynamodb_helper {command} failed: {result.stderr.strip()}")
        return result.stdout

    def create_table(self, table: str, hash_key: tuple[str, str] = ("id", "S"), range_key=None) -> str:
        self.drop_table(table)
        self._call(
            "create",
            {"table": table, "hash": list(hash_key), "range": list(range_key) if range_key else None},
        )
        return table

    def drop_table(self, table: str) -> None:
        self._call("drop", {"table": table})

    def put_items(self, table: str, items: list[dict]) -> None:
        self._call("put", {"table": table, "items": [marshal(item) for item in items]})

    def raw_items(self, table: str) -> list[dict]:
        return json.loads(self._call("scan", {"table": table}))

    def items(self, table: str) -> list[dict]:
        """Plain Python items, sorted by ``id`` when present."""
        items = [unmarshal_item(item) for item in self.raw_items(table)]
        return sorted(items, key=lambda item: str(item.get("id", "")))

    def tables(self) -> list[str]:
        return json.loads(self._call("tables"))


def marshal(value):
    if isinstance(value, dict):
        return {k: _marshal_value(v) for k, v in value.items()}
    raise TypeError(value)


def _marshal_value(value):
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [_marshal_value(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: _marshal_value(v) for k, v in value.items()}}
    raise TypeError(f"cannot marshal {value!r}")


def _unmarshal(value: dict):
    [(kind, inner)] = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        number = Decimal(inner)
        return int(number) if number == number.to_integral_value() and "." not in inner else number
    if kind == "BOOL":
        return inner
    if kind == "NULL":
        return None
    if kind == "L":
        return [_unmarshal(v) for v in inner]
    if kind == "M":
        return {k: _unmarshal(v) for k, v in inner.items()}
    if kind == "SS":
        return set(inner)
    if kind == "NS":
        return {Decimal(v) for v in inner}
    return {kind: inner}


def unmarshal_item(item: dict) -> dict:
    return {k: _unmarshal(v) for k, v in item.items()}
