"""What a user sees when a Cassandra read or write cannot work, and that nothing was
written. Each case asserts the error class and the names in the message, through real
PySpark (classic and Spark Connect)."""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import threading

import pytest
from e2e_support import assert_error, failure

ALICE = "550e8400-e29b-41d4-a716-446655440000"
BOB = "550e8400-e29b-41d4-a716-446655440001"
WRONG_PASSWORD = "not-the-password-0f3c"


@pytest.fixture
def login(cassandra) -> dict[str, str]:
    """host, port, username, password of the local Cassandra."""
    return {"host": "127.0.0.1", **cassandra.options}


@pytest.fixture
def table(cassandra, myks, table_name) -> str:
    """An empty ``myks.<table_name> (id uuid PRIMARY KEY, name text, age int)``."""
    cassandra.cql(f"CREATE TABLE myks.{table_name} (id uuid PRIMARY KEY, name text, age int)")
    yield table_name
    cassandra.cql(f"DROP TABLE IF EXISTS myks.{table_name}")


def people(spark, rows=None, columns=("id", "name", "age")):
    rows = rows or [(ALICE, "Alice", 30), (BOB, "Bob", 25)]
    return spark.createDataFrame(rows, list(columns))


def write(df, options: dict[str, str], mode: str = "append") -> None:
    df.write.format("pycassandra").mode(mode).options(**options).save()


def read(spark, options: dict[str, str]) -> list:
    return spark.read.format("pycassandra").options(**options).load().collect()


def test_wrong_password(spark, login, table, cassandra):
    bad = {**login, "keyspace": "myks", "table": table, "password": WRONG_PASSWORD}
    text = failure(lambda: write(people(spark), bad))
    assert_error(text, "AUTHENTICATION_FAILED", "'cassandra'", "password", secrets=[WRONG_PASSWORD])
    assert cassandra.count("myks", table) == 0

    text = failure(lambda: read(spark, bad))
    assert_error(text, "AUTHENTICATION_FAILED", "'cassandra'", secrets=[WRONG_PASSWORD])


def test_unknown_keyspace(spark, login, cassandra, myks):
    options = {**login, "keyspace": "no_such_ks", "table": "users"}
    text = failure(lambda: write(people(spark), options))
    assert_error(text, "KEYSPACE_NOT_FOUND", "no_such_ks", "keyspace")
    assert "no_such_ks" not in cassandra.keyspaces()

    text = failure(lambda: read(spark, options))
    assert_error(text, "KEYSPACE_NOT_FOUND", "no_such_ks")

    text = failure(lambda: read(spark, {**options, "keyspace": "myk"}))
    assert_error(text, "KEYSPACE_NOT_FOUND", "'myk'", "Did you mean 'myks'?")


def test_unknown_table(spark, login, cassandra, myks, table_name):
    options = {**login, "keyspace": "myks", "table": table_name}
    text = failure(lambda: write(people(spark), options))
    assert_error(text, "TABLE_NOT_FOUND", table_name, "myks")
    assert table_name not in cassandra.tables("myks")

    text = failure(lambda: read(spark, options))
    assert_error(text, "TABLE_NOT_FOUND", table_name)


def test_missing_primary_key_column(spark, login, table, cassandra):
    df = people(spark, [(ALICE, "Alice", 30)], ("user_id", "name", "age"))
    text = failure(lambda: write(df, {**login, "keyspace": "myks", "table": table}))
    assert_error(text, "KEY_COLUMN_MISSING", "'id'", table)
    assert cassandra.count("myks", table) == 0


def test_invalid_uuid(spark, login, table, cassandra):
    # One task, so "nothing written" is a property of the service, not of task order.
    df = people(spark, [(ALICE, "Alice", 30), ("not-a-uuid", "Bob", 25), (BOB, "Bob", 25)]).coalesce(1)
    text = failure(lambda: write(df, {**login, "keyspace": "myks", "table": table}))
    assert_error(text, "INVALID_UUID", "'id'", "not-a-uuid")
    assert cassandra.count("myks", table) == 0


def test_long_out_of_int_range(spark, login, table, cassandra):
    df = people(spark, [(ALICE, "Alice", 30), (BOB, "Bob", 3_000_000_000)]).coalesce(1)
    text = failure(lambda: write(df, {**login, "keyspace": "myks", "table": table}))
    assert_error(text, "VALUE_OUT_OF_RANGE", "'age'", "3000000000", "int")
    assert cassandra.count("myks", table) == 0


class PlainOnlyCassandra:
    """A port where Cassandra speaks only plain CQL, as a node without client encryption
    does (the local node takes plain and TLS clients on one port, so it cannot show this).

    Plain connections are forwarded to the real node. A TLS ClientHello (first byte 0x16)
    is answered as such a node answers it: a CQL protocol error frame ("Invalid or
    unsupported protocol version (22)"), then the connection is closed.
    """

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.tls_hellos = 0
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            first = client.recv(1, socket.MSG_PEEK)
            if first == b"\x16":
                self.tls_hellos += 1
                client.recv(65536)
                message = b"Invalid or unsupported protocol version (22); supported versions are (3/v3, 4/v4, 5/v5)"
                body = struct.pack(">iH", 0x000A, len(message)) + message  # 0x000A: protocol error
                client.sendall(struct.pack(">BBhBi", 0x84, 0, 0, 0x00, len(body)) + body)
                client.close()
                return
            upstream = socket.create_connection(self.upstream)
            self.sockets.append(upstream)
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
            self._pump(client, upstream)

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.close()


@pytest.fixture
def plain_only_port(cassandra):
    proxy = PlainOnlyCassandra(cassandra.host, cassandra.port)
    yield proxy
    proxy.close()


def test_ssl_enabled_against_a_port_without_tls(spark, login, table, cassandra, plain_only_port):
    plain = {**login, "port": str(plain_only_port.port), "keyspace": "myks", "table": table}
    # The port is a working Cassandra for plain clients ...
    write(people(spark, [(ALICE, "Alice", 30)]), plain)
    assert [row["name"] for row in cassandra.rows("myks", table)] == ["Alice"]

    # ... but a client that wants TLS fails with a message that says so.
    tls = {**plain, "ssl_enabled": "true", "ssl_ca_cert": cassandra.ca_cert_file}
    text = failure(lambda: write(people(spark, [(BOB, "Bob", 25)]), tls))
    assert_error(text, "TLS_HANDSHAKE_FAILED", f"127.0.0.1:{plain_only_port.port}", "ssl_enabled")
    assert plain_only_port.tls_hellos >= 1
    assert [row["name"] for row in cassandra.rows("myks", table)] == ["Alice"]

    text = failure(lambda: read(spark, tls))
    assert_error(text, "TLS_HANDSHAKE_FAILED", "ssl_enabled")


def test_tls_with_an_untrusted_certificate(spark, login, table, cassandra, tmp_path):
    """A CA file that did not sign the node's certificate: the connection is refused."""
    other_ca = tmp_path / "other-ca.pem"
    key = tmp_path / "other-ca.key"
    make_ca = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other-ca"]
    subprocess.run([*make_ca, "-keyout", str(key), "-out", str(other_ca)], check=True, capture_output=True)
    options = {
        **login,
        "port": str(cassandra.tls_port),
        "keyspace": "myks",
        "table": table,
        "ssl_enabled": "true",
        "ssl_ca_cert": str(other_ca),
    }
    text = failure(lambda: write(people(spark), options))
    assert_error(text, "TLS_CERTIFICATE_REJECTED", "ssl_ca_cert")
    assert cassandra.count("myks", table) == 0


def test_unknown_option_with_suggestion(spark, login, table, cassandra):
    options = {**login, "keyspace": "myks", "table": table}
    text = failure(lambda: write(people(spark), {**options, "delete_flag_colum": "is_deleted"}))
    assert_error(text, "OPTION_UNKNOWN", "delete_flag_colum", "Did you mean 'delete_flag_column'?")
    assert cassandra.count("myks", table) == 0

    text = failure(lambda: read(spark, {**options, "allow_filter": "true"}))
    assert_error(text, "OPTION_UNKNOWN", "allow_filter", "Did you mean 'allow_filtering'?")


def test_missing_required_option(spark, login, table, cassandra):
    text = failure(lambda: write(people(spark), {**login, "keyspace": "myks"}))
    assert_error(text, "OPTION_REQUIRED", "table")
    assert cassandra.count("myks", table) == 0


def test_delete_flag_column_without_value(spark, login, table, cassandra):
    df = people(spark, [(ALICE, "Alice", 30, True)], ("id", "name", "age", "is_deleted"))
    options = {**login, "keyspace": "myks", "table": table, "delete_flag_column": "is_deleted"}
    text = failure(lambda: write(df, options))
    assert_error(text, "OPTION_CONFLICT", "delete_flag_column", "delete_flag_value")
    assert cassandra.count("myks", table) == 0


def test_filter_that_needs_allow_filtering(spark, login, table, cassandra):
    cassandra.cql(f"INSERT INTO myks.{table} (id, name, age) VALUES ({ALICE}, 'Alice', 30)")
    options = {**login, "keyspace": "myks", "table": table, "filter": "age > 26"}
    text = failure(lambda: read(spark, options))
    assert_error(text, "FILTER_NEEDS_ALLOW_FILTERING", "allow_filtering", "age > 26")


def test_overwrite_without_confirmation(spark, login, table, cassandra):
    cassandra.cql(f"INSERT INTO myks.{table} (id, name, age) VALUES ({BOB}, 'Existing', 1)")
    options = {**login, "keyspace": "myks", "table": table}
    text = failure(lambda: write(people(spark, [(ALICE, "Alice", 30)]), options, mode="overwrite"))
    assert_error(text, "OVERWRITE_NOT_CONFIRMED", "confirm_truncate")
    assert cassandra.rows("myks", table) == [{"id": BOB, "name": "Existing", "age": 1}]


def test_confirmed_overwrite_replaces_the_table(spark, login, table, cassandra):
    cassandra.cql(f"INSERT INTO myks.{table} (id, name, age) VALUES ({BOB}, 'Old', 1)")
    options = {**login, "keyspace": "myks", "table": table, "confirm_truncate": "true"}
    write(people(spark, [(ALICE, "Alice", 30)]), options, mode="overwrite")
    assert cassandra.rows("myks", table) == [{"id": ALICE, "name": "Alice", "age": 30}]
