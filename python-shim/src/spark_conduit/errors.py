"""The one exception type of the shim, and the one place a gRPC error becomes it.

The service reports every failure as a gRPC status whose ``grpc-status-details-bin``
trailer holds a ``google.rpc.Status`` with a ``google.rpc.ErrorInfo`` detail: the reason
is the stable error class (``TABLE_NOT_FOUND``), the domain ``spark-conduit`` and the
metadata the parameters (the option, column, value or table at fault). The shim turns
that back into :class:`SparkConduitError` with the message ``[ERROR_CLASS] message``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import grpc

ERROR_DOMAIN = "spark-conduit"

# Error classes the shim itself raises (the service has its own).
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
# How endpoint.py labels the embedded service's address in messages.
EMBEDDED_SUFFIX = " (embedded)"
SERVICE_START_FAILED = "SERVICE_START_FAILED"
SERVICE_ENDPOINT_INVALID = "SERVICE_ENDPOINT_INVALID"
SERVICE_TOKEN_INVALID = "SERVICE_TOKEN_INVALID"
NODE_NOT_FOUND = "NODE_NOT_FOUND"
SERVICE_BUNDLE_MISSING = "SERVICE_BUNDLE_MISSING"
SERVICE_NOT_PRIVATE = "SERVICE_NOT_PRIVATE"  # the embedded service's directory or socket is not ours
ARROW_DECODE_FAILED = "ARROW_DECODE_FAILED"


class SparkConduitError(Exception):
    """A failure reported by the spark-conduit service or by the shim.

    Attributes:
        error_class: stable identifier of the failure (match on this, not on the message).
        parameters: what is at fault (option, column, value, table), as strings.
        code: the gRPC status code, when the failure came from a call.
        detail: the message without the ``[ERROR_CLASS]`` prefix.
    """

    def __init__(
        self,
        error_class: str,
        detail: str,
        parameters: Mapping[str, str] | None = None,
        code: grpc.StatusCode | None = None,
    ) -> None:
        self.error_class = error_class
        self.detail = detail
        self.parameters = dict(parameters or {})
        self.code = code
        super().__init__(f"[{error_class}] {detail}")

    # The names PySpark's own exceptions use, so code written against them works here too.
    def getErrorClass(self) -> str:
        return self.error_class

    def getMessageParameters(self) -> dict[str, str]:
        return dict(self.parameters)

    def __reduce__(self):
        # Keep every field when Spark pickles the exception between processes.
        return (
            _rebuild_error,
            (self.error_class, self.detail, self.parameters, self.code.name if self.code else None),
        )


def _rebuild_error(
    error_class: str, detail: str, parameters: dict[str, str], code_name: str | None
) -> SparkConduitError:
    code = grpc.StatusCode[code_name] if code_name else None
    return SparkConduitError(error_class, detail, parameters, code)


def _error_info(error: grpc.RpcError) -> tuple[str | None, dict[str, str], str | None]:
    """Reads (reason, metadata, status message) from the rich status trailer, if any."""
    from google.protobuf.message import DecodeError
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except (ValueError, AttributeError, TypeError, DecodeError):
        # A trailer that is corrupt or disagrees with the status line counts as absent.
        return None, {}, None
    if status is None:
        return None, {}, None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain in ("", ERROR_DOMAIN):
                return info.reason or None, dict(info.metadata), status.message
    return None, {}, status.message


def _status(error: grpc.RpcError) -> tuple[grpc.StatusCode | None, str]:
    code = error.code() if callable(getattr(error, "code", None)) else None
    details = error.details() if callable(getattr(error, "details", None)) else None
    return code, details or ""


# How gRPC's C core reports a failed TLS handshake (wrong CA, wrong host name, not TLS).
_TLS_FAILURE = re.compile(r"handshake failed|CERTIFICATE_VERIFY_FAILED|SSL_ERROR|WRONG_VERSION_NUMBER", re.IGNORECASE)


def from_rpc_error(error: grpc.RpcError, endpoint: str | None = None) -> SparkConduitError:
    """Builds the user-facing error from any gRPC error.

    ``endpoint`` is the address the call went to, for messages about reaching the service.
    """
    code, details = _status(error)
    reason, parameters, status_message = _error_info(error)
    message = status_message or details
    where = endpoint or "the configured endpoint"

    if reason:
        result = SparkConduitError(reason, message, parameters, code)
    elif code == grpc.StatusCode.UNAVAILABLE and _TLS_FAILURE.search(details):
        result = SparkConduitError(
            SERVICE_UNAVAILABLE,
            f"The TLS handshake with the spark-conduit service at {where} failed ({details}). Check that "
            "the service_ca_cert option (or SPARK_CONDUIT_CA_CERT) names the CA that signed the service's "
            "certificate, and that the certificate is issued for the host name or IP address in the endpoint.",
            {"endpoint": where},
            code,
        )
    elif code == grpc.StatusCode.UNAVAILABLE and where.endswith(EMBEDDED_SUFFIX):
        result = SparkConduitError(
            SERVICE_UNAVAILABLE,
            f"The embedded spark-conduit service at {where} stopped answering ({details or 'unavailable'}): "
            "it exited or was killed during the call. The next task (or Spark's retry of this one) starts it "
            "again; in local mode Spark retries a failed task only with a master like local[2,4]. Its log is "
            "service.log in the runtime directory (python -m spark_conduit status shows where).",
            {"endpoint": where},
            code,
        )
    elif code == grpc.StatusCode.UNAVAILABLE:
        result = SparkConduitError(
            SERVICE_UNAVAILABLE,
            f"Could not reach the spark-conduit service at {where} ({details or 'unavailable'}). "
            "Check that the service is running there and that the service_endpoint option "
            "(or the SPARK_CONDUIT_ENDPOINT environment variable) names it; leave both unset to "
            "let the shim start a local service on this host.",
            {"endpoint": where},
            code,
        )
    elif code == grpc.StatusCode.UNAUTHENTICATED:
        result = SparkConduitError(
            SERVICE_TOKEN_INVALID,
            f"The spark-conduit service at {where} rejected the request ({details}): set the "
            "service_token option or the SPARK_CONDUIT_TOKEN environment variable to the service's token.",
            {"endpoint": where},
            code,
        )
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        result = SparkConduitError(
            "SERVICE_TIMEOUT",
            f"The spark-conduit service at {where} did not answer in time ({details}).",
            {"endpoint": where},
            code,
        )
    elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        result = SparkConduitError(
            "MESSAGE_TOO_LARGE" if "message" in details.lower() else "RESOURCE_EXHAUSTED",
            f"{details} (the limit for one gRPC message between Spark and the spark-conduit service "
            "is 256 MiB; a single row this large cannot be transferred).",
            {"endpoint": where},
            code,
        )
    else:
        name = code.name if code is not None else "UNKNOWN"
        result = SparkConduitError(
            f"SERVICE_{name}",
            message or f"The spark-conduit service call failed with status {name}.",
            {},
            code,
        )
    result.__cause__ = error
    return result
