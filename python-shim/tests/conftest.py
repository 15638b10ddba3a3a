"""Fixtures for the shim's unit tests (no Spark session, no Node, no database)."""

from __future__ import annotations

import pytest
from fake_service import FakeConduit, serve_fake


@pytest.fixture
def fake_service(monkeypatch):
    """A fake service on 127.0.0.1:<free port>; SPARK_CONDUIT_ENDPOINT points at it."""
    fake = FakeConduit()
    server, port = serve_fake(fake, "127.0.0.1:0")
    fake.endpoint = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
    monkeypatch.setenv("SPARK_CONDUIT_ENDPOINT", fake.endpoint)  # type: ignore[attr-defined]
    monkeypatch.delenv("SPARK_CONDUIT_TOKEN", raising=False)
    yield fake
    server.stop(None)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path_factory):
    for name in (
        "SPARK_CONDUIT_ENDPOINT",
        "SPARK_CONDUIT_TOKEN",
        "SPARK_CONDUIT_CA_CERT",
        "SPARK_CONDUIT_NODE",
    ):
        monkeypatch.delenv(name, raising=False)
    # Never touch the real per-user runtime dir from unit tests.
    monkeypatch.setenv("SPARK_CONDUIT_RUNTIME_DIR", str(tmp_path_factory.mktemp("rt", numbered=True)))
