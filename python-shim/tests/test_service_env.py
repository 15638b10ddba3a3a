"""The service starts with an allow-listed environment, and jobs whose credential
environment differs never share a service."""

from __future__ import annotations

import json
import os
import shutil

from test_service import fake_node, starts  # noqa: F401  (fixture)

from spark_conduit import service
from spark_conduit.endpoint import resolve_endpoint

PASSED = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/someone",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    "SPARK_CONDUIT_LOG_LEVEL": "debug",
    "NODE_EXTRA_CA_CERTS": "/etc/ssl/extra.pem",
    "AWS_PROFILE": "analytics",
    "AWS_REGION": "eu-north-1",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "secret-key-value",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc",
    "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
}
NOT_PASSED = {
    "NODE_OPTIONS": "--require /tmp/evil.js",
    "PYTHONPATH": "/job/libs",
    "SPARK_HOME": "/opt/spark",
    "JOB_DB_PASSWORD": "hunter2",
    "SPARK_CONDUIT_TOKEN": "remote-token",
    "HTTPS_PROXY": "http://proxy:3128",
    "AWSOME_TOOL": "1",
}


def test_service_environment_is_exactly_the_allow_list(fake_node, monkeypatch):  # noqa: F811
    runtime = fake_node
    keep = {"SPARK_CONDUIT_NODE", "SPARK_CONDUIT_SERVER_BUNDLE", "SPARK_CONDUIT_RUNTIME_DIR"}
    for name in list(os.environ):
        if name not in keep:
            monkeypatch.delenv(name)
    for name, value in {**PASSED, **NOT_PASSED}.items():
        monkeypatch.setenv(name, value)
    service.ensure_service()
    assert starts(runtime) == 1
    received = json.loads((runtime / "env.json").read_text())
    assert received == PASSED


def test_service_environment_filters_a_mapping():
    env = {**PASSED, **NOT_PASSED, "LC_TIME": "sv_SE", "AWS_BEARER_TOKEN_DYNAMODB": "t"}
    assert service.service_environment(env) == {**PASSED, "LC_TIME": "sv_SE", "AWS_BEARER_TOKEN_DYNAMODB": "t"}


def test_runtime_dir_is_keyed_by_the_credential_environment():
    base = {"HOME": "/home/a", "PATH": "/bin"}
    a = service.runtime_dir({**base, "AWS_PROFILE": "a"})
    b = service.runtime_dir({**base, "AWS_PROFILE": "b"})
    assert a != b
    assert a == service.runtime_dir({**base, "AWS_PROFILE": "a"})
    assert str(a).startswith(f"/tmp/spark-conduit-{os.getuid()}-") and len(a.name.rsplit("-", 1)[1]) == 12
    # Keys, tokens, role, credential files, CA trust and HOME (~/.aws) all separate services ...
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "NODE_EXTRA_CA_CERTS",
    ):
        assert service.runtime_dir({**base, name: "x"}) != service.runtime_dir(base), name
    assert service.runtime_dir({**base, "HOME": "/home/b"}) != service.runtime_dir(base)
    # ... what does not change the identity does not, and neither does anything not passed.
    for name in (
        "PATH",
        "LANG",
        "LC_ALL",
        "TZ",
        "TMPDIR",
        "SPARK_CONDUIT_LOG_LEVEL",
        "NODE_OPTIONS",
        "JOB_DB_PASSWORD",
    ):
        assert service.runtime_dir({**base, name: "changed"}) == service.runtime_dir(base), name
    # The name never shows a secret, and the socket path stays far below the 107-byte limit.
    secret = service.runtime_dir({**base, "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG"})
    assert "wJalr" not in str(secret)
    assert len(str(secret / "conduit.sock")) < 60
    # An explicit directory is used as it is.
    assert str(service.runtime_dir({"SPARK_CONDUIT_RUNTIME_DIR": "/tmp/x", "AWS_PROFILE": "a"})) == "/tmp/x"
    # The shim's endpoint resolution agrees.
    assert resolve_endpoint({}, {**base, "AWS_PROFILE": "a"}).target == f"unix:{a}/conduit.sock"


def test_two_profiles_start_two_services(fake_node, monkeypatch):  # noqa: F811
    monkeypatch.delenv("SPARK_CONDUIT_RUNTIME_DIR")
    monkeypatch.setenv("HOME", "/nonexistent-test-home")  # a key no real job of this user has
    dirs = []
    try:
        for profile in ("job-one", "job-two", "job-one"):
            monkeypatch.setenv("AWS_PROFILE", profile)
            service.forget_health()
            target = service.ensure_service()
            dirs.append(service.runtime_dir())
            assert target == f"unix:{dirs[-1]}/conduit.sock"
        assert dirs[0] != dirs[1] and dirs[0] == dirs[2]
        assert starts(dirs[0]) == 1 and starts(dirs[1]) == 1
        assert service.read_pid(dirs[0]) != service.read_pid(dirs[1])
        assert json.loads((dirs[1] / "env.json").read_text())["AWS_PROFILE"] == "job-two"
    finally:
        for profile in ("job-one", "job-two"):
            monkeypatch.setenv("AWS_PROFILE", profile)
            service.stop_service(timeout=5)
            shutil.rmtree(service.runtime_dir(), ignore_errors=True)
