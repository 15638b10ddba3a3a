from __future__ import annotations

import pytest

from spark_conduit.endpoint import (
    CHANNEL_OPTIONS,
    MAX_MESSAGE_BYTES,
    is_loopback,
    parse_endpoint,
    resolve_endpoint,
    secret_options,
    service_options,
)
from spark_conduit.errors import SparkConduitError


def test_option_wins_over_environment():
    endpoint = resolve_endpoint({"service_endpoint": "127.0.0.1:7000"}, {"SPARK_CONDUIT_ENDPOINT": "127.0.0.1:8000"})
    assert endpoint.target == "127.0.0.1:7000"
    assert not endpoint.tls and not endpoint.embedded


def test_environment_when_no_option():
    endpoint = resolve_endpoint({}, {"SPARK_CONDUIT_ENDPOINT": "unix:/run/conduit.sock"})
    assert endpoint.target == "unix:/run/conduit.sock"


def test_embedded_by_default_in_the_runtime_dir():
    endpoint = resolve_endpoint({}, {"SPARK_CONDUIT_RUNTIME_DIR": "/tmp/scx"})
    assert endpoint.embedded
    assert endpoint.target == "unix:/tmp/scx/conduit.sock"


def test_default_runtime_dir_is_per_user():
    import os

    from spark_conduit.service import environment_key

    # Per user and per credential environment (see test_service_env.py for the key itself).
    endpoint = resolve_endpoint({}, {})
    assert endpoint.target == f"unix:/tmp/spark-conduit-{os.getuid()}-{environment_key({})}/conduit.sock"


def test_blank_values_are_ignored():
    endpoint = resolve_endpoint(
        {"service_endpoint": "  "}, {"SPARK_CONDUIT_ENDPOINT": "", "SPARK_CONDUIT_RUNTIME_DIR": "/x"}
    )
    assert endpoint.embedded


def test_option_keys_in_any_case():
    endpoint = resolve_endpoint({"Service_Endpoint": "localhost:1234"}, {})
    assert endpoint.target == "localhost:1234"


def test_https_uses_tls_token_and_ca():
    endpoint = resolve_endpoint(
        {"service_endpoint": "https://conduit.internal:443", "service_token": "s3cret"},
        {"SPARK_CONDUIT_CA_CERT": "/etc/ca.pem"},
    )
    assert endpoint.tls
    assert endpoint.target == "conduit.internal:443"
    assert endpoint.ca_cert_path == "/etc/ca.pem"
    assert endpoint.metadata() == (("authorization", "Bearer s3cret"),)
    assert "s3cret" not in repr(endpoint)


def test_token_and_ca_from_environment():
    endpoint = resolve_endpoint(
        {},
        {
            "SPARK_CONDUIT_ENDPOINT": "https://h:8443",
            "SPARK_CONDUIT_TOKEN": "t",
            "SPARK_CONDUIT_CA_CERT": "/ca",
        },
    )
    assert endpoint.token == "t" and endpoint.ca_cert_path == "/ca"


def test_option_token_wins_over_environment():
    endpoint = resolve_endpoint(
        {"service_endpoint": "https://h:1", "service_token": "opt"}, {"SPARK_CONDUIT_TOKEN": "env"}
    )
    assert endpoint.token == "opt"


def test_no_token_no_metadata():
    assert resolve_endpoint({"service_endpoint": "127.0.0.1:1"}, {}).metadata() == ()


@pytest.mark.parametrize(
    "value",
    ["unix:/tmp/a.sock", "unix:///tmp/a.sock"],
)
def test_unix_forms(value):
    assert parse_endpoint(value, "test").target == "unix:/tmp/a.sock"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("localhost", "port is missing"),
        ("localhost:http", "not a port number"),
        ("localhost:70000", "not a port number"),
        ("unix:relative.sock", "must be absolute"),
        ("grpc://h:1", "scheme 'grpc'"),
        (":8080", "port is missing"),
    ],
)
def test_invalid_endpoints_say_why(value, why):
    with pytest.raises(SparkConduitError) as excinfo:
        resolve_endpoint({"service_endpoint": value}, {})
    assert excinfo.value.error_class == "SERVICE_ENDPOINT_INVALID"
    assert why in str(excinfo.value)
    assert "service_endpoint option" in str(excinfo.value)


def test_token_is_never_sent_in_clear_text_off_loopback():
    with pytest.raises(SparkConduitError, match=r"https://10\.0\.0\.5:50551"):
        resolve_endpoint({"service_endpoint": "10.0.0.5:50551", "service_token": "t"}, {})
    # Loopback and unix sockets are fine.
    assert resolve_endpoint({"service_endpoint": "127.0.0.1:1", "service_token": "t"}, {}).token == "t"
    assert resolve_endpoint({"service_endpoint": "[::1]:1", "service_token": "t"}, {}).token == "t"
    assert resolve_endpoint({"service_endpoint": "unix:/a", "service_token": "t"}, {}).token == "t"


def test_http_scheme_is_plaintext():
    endpoint = parse_endpoint("http://127.0.0.1:50551/", "test")
    assert endpoint.target == "127.0.0.1:50551" and not endpoint.tls


def test_is_loopback():
    assert is_loopback("localhost") and is_loopback("127.0.0.2") and is_loopback("[::1]")
    assert not is_loopback("example.com") and not is_loopback("10.1.1.1")


def test_service_options_pass_everything_but_the_token():
    options = {
        "table_name": "users",
        "service_token": "secret",
        "service_endpoint": "h:1",
        "TOTAL_SEGMENTS": 4,
    }
    assert service_options(options) == {
        "table_name": "users",
        "service_endpoint": "h:1",
        "total_segments": "4",
    }


def test_channel_message_limits_are_256_mib():
    assert dict(CHANNEL_OPTIONS) == {
        "grpc.max_send_message_length": 256 * 1024 * 1024,
        "grpc.max_receive_message_length": 256 * 1024 * 1024,
    }
    assert MAX_MESSAGE_BYTES == 256 * 1024 * 1024


def test_unreadable_ca_cert_is_a_clear_error(tmp_path):
    endpoint = resolve_endpoint(
        {"service_endpoint": "https://h:1", "service_ca_cert": str(tmp_path / "missing.pem")}, {}
    )
    with pytest.raises(SparkConduitError, match=r"missing\.pem"):
        endpoint.channel()


# ---- cleartext off loopback ---------------------------------------------------------

ALLOW = {"SPARK_CONDUIT_ALLOW_PLAINTEXT": "true"}


@pytest.mark.parametrize("value", ["10.0.0.5:50551", "http://10.0.0.5:50551", "conduit.internal:50551"])
def test_plaintext_off_loopback_is_refused_by_default(value):
    with pytest.raises(SparkConduitError) as excinfo:
        resolve_endpoint({"service_endpoint": value, "table_name": "t"}, {})
    assert excinfo.value.error_class == "SERVICE_ENDPOINT_INVALID"
    message = str(excinfo.value)
    assert "SPARK_CONDUIT_ALLOW_PLAINTEXT=true" in message and "https://" in message


def test_plaintext_off_loopback_is_refused_from_the_environment_too():
    with pytest.raises(SparkConduitError, match="the SPARK_CONDUIT_ENDPOINT environment variable"):
        resolve_endpoint({}, {"SPARK_CONDUIT_ENDPOINT": "10.0.0.5:1"})


def test_plaintext_off_loopback_with_the_opt_in_and_no_secrets():
    endpoint = resolve_endpoint({"service_endpoint": "10.0.0.5:50551", "table_name": "t", "aws_region": "x"}, ALLOW)
    assert endpoint.target == "10.0.0.5:50551" and not endpoint.tls
    # An empty secret option carries nothing.
    assert resolve_endpoint({"service_endpoint": "10.0.0.5:1", "password": " "}, ALLOW).target == "10.0.0.5:1"


@pytest.mark.parametrize("flag", ["1", "yes", "TRUE ", "on", ""])
def test_the_opt_in_is_the_word_true_only(flag):
    allowed = flag.strip().lower() == "true"
    environ = {"SPARK_CONDUIT_ALLOW_PLAINTEXT": flag}
    if allowed:
        assert resolve_endpoint({"service_endpoint": "10.0.0.5:1"}, environ).target == "10.0.0.5:1"
    else:
        with pytest.raises(SparkConduitError):
            resolve_endpoint({"service_endpoint": "10.0.0.5:1"}, environ)


@pytest.mark.parametrize(
    "secret",
    ["aws_secret_access_key", "aws_session_token", "password", "service_token", "SSL_KEY", "client_secret"],
)
def test_secret_options_never_travel_in_clear_text_even_with_the_opt_in(secret):
    options = {"service_endpoint": "http://10.0.0.5:50551", secret: "Sup3r-s3cret-value", "table_name": "t"}
    with pytest.raises(SparkConduitError) as excinfo:
        resolve_endpoint(options, ALLOW)
    message = str(excinfo.value)
    assert secret.lower() in message and "https://10.0.0.5:50551" in message
    assert "Sup3r-s3cret-value" not in message and "Sup3r-s3cret-value" not in repr(excinfo.value.parameters)
    # The same options are fine over TLS, on loopback and on a unix socket.
    for endpoint in ("https://10.0.0.5:50551", "127.0.0.1:50551", "localhost:1", "unix:/run/c.sock"):
        resolve_endpoint({**options, "service_endpoint": endpoint}, ALLOW)


def test_a_token_from_the_environment_never_travels_in_clear_text():
    with pytest.raises(SparkConduitError, match="service token"):
        resolve_endpoint({"service_endpoint": "10.0.0.5:1"}, {**ALLOW, "SPARK_CONDUIT_TOKEN": "tok"})


def test_secret_options_are_named_by_the_same_rule_as_the_service():
    options = {
        "aws_secret_access_key": "a",
        "aws_session_token": "b",
        "password": "c",
        "service_token": "d",
        "aws_access_key_id": "e",
        "username": "f",
        "hash_key": "g",
        "range_key": "h",
        "ssl_ca_cert": "/ca.pem",
        "keyspace": "k",
        "table_name": "t",
        "service_ca_cert": "/x",
    }
    assert secret_options(options) == ["aws_secret_access_key", "aws_session_token", "password", "service_token"]
