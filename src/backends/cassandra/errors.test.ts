import { describe, expect, it } from "vitest";
import cassandra from "cassandra-driver";
import { ConduitError } from "../../core/errors.js";
import { classifyFailure, isRetryable, keyspaceNotFound, tableNotFound, translateCassandraError, type ErrorContext } from "./errors.js";
import { noHostAvailable, responseError } from "./test-fakes.js";

const codes = cassandra.types.responseErrorCodes;
const { errors } = cassandra;

const context: ErrorContext = { target: "127.0.0.1:9042", tls: false, keyspace: "ks", table: "users", operation: "write", username: "alice" };

function socketError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe("translateCassandraError", () => {
  it("reports rejected credentials naming the user, never the password", () => {
    const driverError = noHostAvailable({ "127.0.0.1:9042": new errors.AuthenticationError("Provided username alice and/or password are incorrect") });
    const error = translateCassandraError(driverError, context);
    expect(error.code).toBe("UNAUTHENTICATED");
    expect(error.errorClass).toBe("AUTHENTICATION_FAILED");
    expect(error.message).toContain("'alice'");
    expect(error.message).toContain("'password'");
    expect(error.parameters.username).toBe("alice");
    expect(error.cause).toBe(driverError);
  });

  it("asks for credentials when the cluster needs them and none were given", () => {
    const driverError = noHostAvailable({ "127.0.0.1:9042": new errors.AuthenticationError("Host 127.0.0.1:9042 requires authentication, but no authenticator found in the options") });
    const error = translateCassandraError(driverError, { ...context, username: undefined });
    expect(error.errorClass).toBe("AUTHENTICATION_REQUIRED");
    expect(error.message).toContain("'username' and 'password'");
  });

  it("recognizes a TLS client talking to a plain port, shortening OpenSSL's message", () => {
    const tls = socketError("ERR_SSL_WRONG_VERSION_NUMBER", "80CC03701B7F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/ssl/record/ssl3_record.c:350:\n");
    const error = translateCassandraError(noHostAvailable({ "127.0.0.1:9042": tls }), { ...context, tls: true, target: "127.0.0.1:9042 (TLS)" });
    expect(error.code).toBe("UNAVAILABLE");
    expect(error.errorClass).toBe("TLS_HANDSHAKE_FAILED");
    expect(error.message).toContain("'ssl_enabled'");
    expect(error.message).toContain("'port'");
    expect(error.parameters.reason).toBe("wrong version number");
  });

  it("suggests TLS when a plain client gets no answer", () => {
    const timeout = new errors.OperationTimedOutError("The host 127.0.0.1:9042 did not reply before timeout 12000 ms", "127.0.0.1:9042");
    const error = translateCassandraError(noHostAvailable({ "127.0.0.1:9042": timeout }), context);
    expect(error.errorClass).toBe("CASSANDRA_UNAVAILABLE");
    expect(error.message).toContain("set 'ssl_enabled' to true");
  });

  it("explains a rejected certificate", () => {
    const cert = socketError("SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain");
    const error = translateCassandraError(noHostAvailable({ "10.0.0.1:9042": cert }), { ...context, tls: true });
    expect(error.errorClass).toBe("TLS_CERTIFICATE_REJECTED");
    expect(error.message).toContain("'ssl_ca_cert'");
  });

  it("names the hosts and port when nothing accepts the connection", () => {
    const refused = socketError("ECONNREFUSED", "connect ECONNREFUSED 10.0.0.1:9042");
    const error = translateCassandraError(noHostAvailable({ "10.0.0.1:9042": refused, "10.0.0.2:9042": refused }), { ...context, target: "10.0.0.1:9042, 10.0.0.2:9042" });
    expect(error.code).toBe("UNAVAILABLE");
    expect(error.errorClass).toBe("CASSANDRA_UNAVAILABLE");
    expect(error.message).toContain("10.0.0.1:9042, 10.0.0.2:9042");
    expect(error.message).toContain("'host' and 'port'");
    expect(error.parameters.reason).toBe("ECONNREFUSED");
    expect(translateCassandraError(noHostAvailable({ "nohost:9042": socketError("ENOTFOUND", "getaddrinfo ENOTFOUND nohost") }), context).message).toContain("could not be resolved");
  });

  it("maps timeouts", () => {
    expect(translateCassandraError(responseError(codes.writeTimeout, "Operation timed out - received only 0 responses."), context)).toMatchObject({
      code: "DEADLINE_EXCEEDED",
      errorClass: "CASSANDRA_TIMEOUT",
    });
    expect(translateCassandraError(new errors.OperationTimedOutError("The host 127.0.0.1:9042 did not reply before timeout 30000 ms"), context).errorClass).toBe("CASSANDRA_TIMEOUT");
  });

  it("names the filter option for an invalid read query", () => {
    const read = { ...context, operation: "read", filter: "age >> 3" };
    const invalid = translateCassandraError(responseError(codes.syntaxError, "line 1:84 no viable alternative at input '>'"), read);
    expect(invalid).toMatchObject({ code: "INVALID_ARGUMENT", errorClass: "FILTER_INVALID" });
    expect(invalid.parameters.option).toBe("filter");
    expect(invalid.message).toContain("age >> 3");
    const needsAllow = translateCassandraError(
      responseError(codes.invalid, "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING"),
      { ...read, filter: "age > 3" },
    );
    expect(needsAllow.errorClass).toBe("FILTER_NEEDS_ALLOW_FILTERING");
    expect(needsAllow.parameters.option).toBe("allow_filtering");
    expect(translateCassandraError(responseError(codes.invalid, "Invalid INTEGER constant (x) for \"n\" of type int"), context).errorClass).toBe("CASSANDRA_INVALID_QUERY");
  });

  it("maps a table dropped after planning to TABLE_NOT_FOUND", () => {
    const error = translateCassandraError(responseError(codes.invalid, "unconfigured table users"), context);
    expect(error).toMatchObject({ code: "NOT_FOUND", errorClass: "TABLE_NOT_FOUND" });
  });

  it("maps permissions, unavailable replicas, truncate and replica failures", () => {
    expect(translateCassandraError(responseError(codes.unauthorized, "User alice has no MODIFY permission on <table ks.users>"), context)).toMatchObject({
      code: "PERMISSION_DENIED",
      errorClass: "CASSANDRA_PERMISSION_DENIED",
    });
    expect(translateCassandraError(responseError(codes.unavailableException, "Cannot achieve consistency level QUORUM"), context)).toMatchObject({
      code: "UNAVAILABLE",
      errorClass: "CASSANDRA_UNAVAILABLE",
    });
    expect(translateCassandraError(responseError(codes.truncateError, "Truncate failed"), context).errorClass).toBe("TRUNCATE_FAILED");
    expect(translateCassandraError(responseError(codes.readFailure, "Operation failed - received 0 responses and 1 failures"), context).errorClass).toBe("CASSANDRA_REQUEST_FAILED");
  });

  it("wraps anything else as INTERNAL, redacting secrets, keeping the cause", () => {
    const raw = new TypeError("bad thing password=hunter2");
    const error = translateCassandraError(raw, context);
    expect(error.code).toBe("INTERNAL");
    expect(error.message).not.toContain("hunter2");
    expect(error.cause).toBe(raw);
    const conduit = new ConduitError({ code: "NOT_FOUND", errorClass: "X", message: "x" });
    expect(translateCassandraError(conduit, context)).toBe(conduit);
  });
});

describe("a node's answer wrapped in NoHostAvailableError", () => {
  it("Overloaded is CASSANDRA_OVERLOADED naming the table and 'concurrency', not the host and port", () => {
    const overloaded = responseError(codes.overloaded, "Overloaded");
    const error = translateCassandraError(noHostAvailable({ "127.0.0.1:9042": overloaded }), context);
    expect(error).toMatchObject({ code: "UNAVAILABLE", errorClass: "CASSANDRA_OVERLOADED" });
    expect(error.message).toContain("ks.users");
    expect(error.message).toContain("overloaded");
    expect(error.message).toContain("'concurrency'");
    expect(error.message).not.toContain("'host' and 'port'");
    const read = translateCassandraError(overloaded, { ...context, operation: "read" });
    expect(read.message).toContain("'read_page_size'");
  });

  it("a write timeout inside is CASSANDRA_TIMEOUT", () => {
    const error = translateCassandraError(noHostAvailable({ a: responseError(codes.writeTimeout, "Operation timed out") }), context);
    expect(error.errorClass).toBe("CASSANDRA_TIMEOUT");
  });
});

describe("classifyFailure", () => {
  const socket = (notWritten: boolean) => Object.assign(new Error("Socket was closed"), { isSocketError: true, requestNotWritten: notWritten });
  it("tells answered errors, unreachable nodes and fatal errors apart, and which attempts may have been applied", () => {
    expect(classifyFailure(responseError(codes.writeTimeout, "t"))).toEqual({ kind: "answered", mayHaveApplied: true });
    expect(classifyFailure(responseError(codes.overloaded, "o"))).toEqual({ kind: "answered", mayHaveApplied: false });
    expect(classifyFailure(noHostAvailable({ a: responseError(codes.overloaded, "o") }))).toEqual({ kind: "answered", mayHaveApplied: false });
    expect(classifyFailure(responseError(codes.unavailableException, "u"))).toEqual({ kind: "answered", mayHaveApplied: false });
    expect(classifyFailure(noHostAvailable({ a: "Host considered as DOWN" as unknown as Error }))).toEqual({ kind: "unreachable", mayHaveApplied: false });
    expect(classifyFailure(noHostAvailable({ a: socket(true) }))).toEqual({ kind: "unreachable", mayHaveApplied: false });
    expect(classifyFailure(noHostAvailable({ a: socket(false) }))).toEqual({ kind: "unreachable", mayHaveApplied: true });
    expect(classifyFailure(socket(false))).toEqual({ kind: "unreachable", mayHaveApplied: true });
    expect(classifyFailure(new errors.OperationTimedOutError("t"))).toEqual({ kind: "unreachable", mayHaveApplied: true });
    expect(classifyFailure(responseError(codes.invalid, "i")).kind).toBe("fatal");
    expect(classifyFailure(noHostAvailable({ a: new errors.AuthenticationError("bad") })).kind).toBe("fatal");
  });
});

describe("isRetryable", () => {
  it("retries timeouts, unavailable and overloaded nodes, not client errors", () => {
    expect(isRetryable(responseError(codes.writeTimeout, "t"))).toBe(true);
    expect(isRetryable(responseError(codes.unavailableException, "u"))).toBe(true);
    expect(isRetryable(responseError(codes.overloaded, "o"))).toBe(true);
    expect(isRetryable(new errors.OperationTimedOutError("t"))).toBe(true);
    expect(isRetryable(noHostAvailable({ a: socketError("ECONNRESET", "reset") }))).toBe(true);
    expect(isRetryable(noHostAvailable({ a: new errors.AuthenticationError("bad") }))).toBe(false);
    expect(isRetryable(responseError(codes.invalid, "i"))).toBe(false);
    expect(isRetryable(responseError(codes.syntaxError, "s"))).toBe(false);
    expect(isRetryable(new TypeError("x"))).toBe(false);
  });
});

describe("not found", () => {
  it("suggests the closest keyspace and table", () => {
    const ks = keyspaceNotFound("myks", ["system", "system_schema", "my_ks", "other"], "h:1");
    expect(ks.parameters.suggestion).toBe("my_ks");
    expect(ks.message).not.toContain("system_schema");
    const table = tableNotFound("ks", "Users", ["users", "orders"], "h:1");
    expect(table.parameters.suggestion).toBe("users");
    expect(table.message).toContain("case-sensitive");
  });
});
