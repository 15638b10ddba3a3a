"""Where the spark-conduit service is, and how to talk to it.

Resolution order: the ``service_endpoint`` option, else the ``SPARK_CONDUIT_ENDPOINT``
environment variable, else the embedded service of this host (found or started by
:mod:`spark_conduit.service`). Accepted forms:

- ``host:port``: plaintext gRPC (meant for loopback or a trusted network);
- ``unix:/path/to.sock``: a unix domain socket;
- ``https://host:port``: TLS, verified against ``service_ca_cert`` /
  ``SPARK_CONDUIT_CA_CERT`` or the system roots.

A bearer token (``service_token`` / ``SPARK_CONDUIT_TOKEN``) travels as
``authorization: Bearer <token>`` metadata.

Cleartext rule: a plaintext endpoint (``host:port`` or ``http://``) that is not loopback is
refused, because every request carries the options (credentials included) and the rows.
``SPARK_CONDUIT_ALLOW_PLAINTEXT=true`` (on the driver and the executors) allows it for a
trusted private network, but only for requests that carry no secret: never with a token and
never with a secret option (``password``, ``aws_secret_access_key``, ``aws_session_token``,
any option whose name says secret/password/token/key material). Those need ``https://``.
Channels are created where they are used (inside read/write/driver calls) and closed
after; nothing here is ever pickled.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc

from spark_conduit.errors import EMBEDDED_SUFFIX, SERVICE_ENDPOINT_INVALID, SparkConduitError

ENDPOINT_OPTION = "service_endpoint"
TOKEN_OPTION = "service_token"
CA_CERT_OPTION = "service_ca_cert"
ENDPOINT_ENV = "SPARK_CONDUIT_ENDPOINT"
ALLOW_PLAINTEXT_ENV = "SPARK_CONDUIT_ALLOW_PLAINTEXT"
TOKEN_ENV = "SPARK_CONDUIT_TOKEN"
CA_CERT_ENV = "SPARK_CONDUIT_CA_CERT"

# Options only the shim reads; they are not sent to the service (the token travels as
# call metadata instead).
SHIM_ONLY_OPTIONS = frozenset({TOKEN_OPTION})

# Option names whose values are secrets; the same rule as the service's (src/core/redact.ts),
# which its tests check against the options the registries flag as secret.
_SECRET_NAME = re.compile(
    r"secret|password|passw(?:or)?d|pwd|token|credential|authorization|private[_-]?key|api[_-]?key|ssl[_-]?key|cookie",
    re.IGNORECASE,
)

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
CHANNEL_OPTIONS = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
)


@dataclass(frozen=True)
class Endpoint:
    """A resolved service address. ``target`` is what grpc connects to."""

    target: str
    display: str
    tls: bool = False
    ca_cert_path: str | None = None
    token: str | None = field(default=None, repr=False)
    embedded: bool = False

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def channel(self) -> grpc.Channel:
        if not self.tls:
            return grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        root_certificates = None
        if self.ca_cert_path:
            try:
                with open(self.ca_cert_path, "rb") as handle:
                    root_certificates = handle.read()
            except OSError as error:
                raise SparkConduitError(
                    SERVICE_ENDPOINT_INVALID,
                    f"Cannot read the CA certificate {self.ca_cert_path} given by the service_ca_cert "
                    f"option or SPARK_CONDUIT_CA_CERT: {error.strerror}.",
                    {"option": CA_CERT_OPTION, "path": self.ca_cert_path},
                ) from error
        credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
        return grpc.secure_channel(self.target, credentials, options=CHANNEL_OPTIONS)


def _get(options: Mapping[str, str], key: str) -> str | None:
    value = options.get(key)
    if value is None:
        # Spark lowercases option keys; accept other spellings from direct callers.
        for k, v in options.items():
            if k.lower() == key:
                value = v
                break
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _invalid(value: str, source: str, why: str) -> SparkConduitError:
    return SparkConduitError(
        SERVICE_ENDPOINT_INVALID,
        f"The spark-conduit endpoint {value!r} from {source} is not valid: {why}. Use host:port, "
        "unix:/path/to.sock or https://host:port.",
        {"endpoint": value, "source": source},
    )


def _split_host_port(address: str, value: str, source: str) -> tuple[str, int]:
    host, sep, port_text = address.rpartition(":")
    if not sep or not host:
        raise _invalid(value, source, "the port is missing")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _invalid(value, source, f"{port_text!r} is not a port number")
    if "/" in host or "/" in port_text:
        raise _invalid(value, source, "a path is not allowed")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secret_options(options: Mapping[str, str]) -> list[str]:
    """The names of the options that carry a secret value (never the values)."""
    return sorted(str(k).lower() for k, v in options.items() if _SECRET_NAME.search(str(k)) and str(v).strip())


def _plaintext_refused(text: str, address: str, source: str, why: str) -> SparkConduitError:
    return SparkConduitError(
        SERVICE_ENDPOINT_INVALID,
        f"Refusing to send requests in clear text to {text} (from {source}): {why}. Use "
        f"https://{address} (start the service with --tls-cert/--tls-key), or a loopback address.",
        {"endpoint": text, "source": source},
    )


def parse_endpoint(
    value: str,
    source: str,
    token: str | None = None,
    ca_cert_path: str | None = None,
    *,
    secrets: tuple[str, ...] | list[str] = (),
    allow_plaintext: bool = False,
) -> Endpoint:
    """Parses an explicit endpoint (from an option or environment variable).

    ``secrets`` names the request's secret options; with them, or with a token, a plaintext
    endpoint off loopback is refused even when ``allow_plaintext`` is set.
    """
    text = value.strip()
    lowered = text.lower()
    if lowered.startswith("unix:"):
        path = text[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]
        if not path.startswith("/"):
            raise _invalid(value, source, "a unix socket path must be absolute")
        return Endpoint(target=f"unix:{path}", display=text, token=token)
    if lowered.startswith("https://"):
        address = text[len("https://") :].rstrip("/")
        _split_host_port(address, value, source)
        return Endpoint(target=address, display=text, tls=True, ca_cert_path=ca_cert_path, token=token)
    if lowered.startswith("http://"):
        address = text[len("http://") :].rstrip("/")
    elif "://" in text:
        raise _invalid(value, source, f"the scheme {text.split('://', 1)[0]!r} is not supported")
    else:
        address = text
    host, _ = _split_host_port(address, value, source)
    if not is_loopback(host):
        if token:
            raise _plaintext_refused(
                text, address, source, "the service token (service_token, SPARK_CONDUIT_TOKEN) would go unencrypted"
            )
        if secrets:
            raise _plaintext_refused(
                text, address, source, f"the option(s) {', '.join(secrets)} would travel unencrypted"
            )
        if not allow_plaintext:
            raise _plaintext_refused(
                text,
                address,
                source,
                "off loopback every request carries its options and rows; on a trusted private network, "
                f"and only without secret options or a token, set {ALLOW_PLAINTEXT_ENV}=true on the driver "
                "and the executors to allow it",
            )
    return Endpoint(target=address, display=text, token=token)


def resolve_endpoint(options: Mapping[str, str], environ: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint named by the options or environment; else the embedded service's.

    Resolving the embedded endpoint does not start anything: :func:`connect_endpoint`
    (or :func:`spark_conduit.service.ensure_service`) does, when a call needs it.
    """
    env = os.environ if environ is None else environ
    token = _get(options, TOKEN_OPTION) or (env.get(TOKEN_ENV) or "").strip() or None
    ca_cert = _get(options, CA_CERT_OPTION) or (env.get(CA_CERT_ENV) or "").strip() or None
    rules = {
        "secrets": secret_options(options),
        "allow_plaintext": (env.get(ALLOW_PLAINTEXT_ENV) or "").strip().lower() == "true",
    }
    explicit = _get(options, ENDPOINT_OPTION)
    if explicit:
        return parse_endpoint(explicit, f"the {ENDPOINT_OPTION} option", token, ca_cert, **rules)
    from_env = (env.get(ENDPOINT_ENV) or "").strip()
    if from_env:
        return parse_endpoint(from_env, f"the {ENDPOINT_ENV} environment variable", token, ca_cert, **rules)
    from spark_conduit.service import socket_path

    path = socket_path(env)
    return Endpoint(target=f"unix:{path}", display=f"unix:{path}{EMBEDDED_SUFFIX}", token=token, embedded=True)


def connect_endpoint(options: Mapping[str, str]) -> Endpoint:
    """Resolves the endpoint and, for the embedded service, makes sure it is running."""
    endpoint = resolve_endpoint(options)
    if endpoint.embedded:
        from spark_conduit.service import ensure_service

        ensure_service()
    return endpoint


def service_options(options: Mapping[str, str]) -> dict[str, str]:
    """The options sent to the service: every option as str -> str, minus shim-only secrets."""
    return {str(k).lower(): str(v) for k, v in options.items() if str(k).lower() not in SHIM_ONLY_OPTIONS}
