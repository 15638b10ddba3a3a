import { describe, expect, it } from "vitest";
import { thrown } from "../../../tests/support/conduit-error.js";
import { ConduitError } from "../../core/errors.js";
import { cassandraOptions, parseCassandraOptions, parseContactPoints } from "./options.js";

const base = { host: "127.0.0.1", keyspace: "myks", table: "users" };

const errorOf = (raw: Record<string, string>, operation: "read" | "write") => thrown(() => parseCassandraOptions(raw, operation));

describe("pycassandra options", () => {
  it("applies PyCassandra's defaults for writes", () => {
    const options = parseCassandraOptions(base, "write");
    expect(options).toMatchObject({
      host: "127.0.0.1",
      port: 9042,
      keyspace: "myks",
      table: "users",
      ssl_enabled: false,
      concurrency: 100,
      rows_per_batch: 1000,
      consistency: "LOCAL_QUORUM",
      confirm_truncate: false,
      write_nulls: false,
    });
    expect(options.contactPoints).toEqual([{ host: "127.0.0.1", port: 9042 }]);
    expect(options.username).toBeUndefined();
    expect(options.delete_flag_column).toBeUndefined();
  });

  it("reads at LOCAL_ONE by default, with read defaults", () => {
    expect(parseCassandraOptions(base, "read")).toMatchObject({ consistency: "LOCAL_ONE", read_page_size: 5000, split_size_mb: 64, allow_filtering: false });
    expect(parseCassandraOptions(base, "read").read_partitions).toBeUndefined();
  });

  it("documents the operation-dependent consistency default", () => {
    expect(cassandraOptions.specs.consistency.defaultText).toContain("LOCAL_QUORUM");
    expect(cassandraOptions.specs.consistency.defaultText).toContain("LOCAL_ONE");
    expect(cassandraOptions.specs.password.secret).toBe(true);
  });

  it("parses every option, keys and enum values case-insensitively", () => {
    const options = parseCassandraOptions(
      {
        HOST: "10.0.0.1, 10.0.0.2:9043",
        port: "19042",
        keyspace: "Ks",
        table: "T",
        username: "alice",
        password: "s3cret",
        ssl_enabled: "TRUE",
        ssl_ca_cert: "/etc/ca.pem",
        consistency: "quorum",
        concurrency: "8",
        rows_per_batch: "50",
        delete_flag_column: "is_deleted",
        delete_flag_value: "true",
        confirm_truncate: "true",
        local_datacenter: "dc1",
        checkpointLocation: "/tmp/cp",
      },
      "write",
    );
    expect(options).toMatchObject({ port: 19042, keyspace: "Ks", table: "T", username: "alice", ssl_enabled: true, consistency: "QUORUM", concurrency: 8, rows_per_batch: 50 });
    expect(options.contactPoints).toEqual([
      { host: "10.0.0.1", port: 19042 },
      { host: "10.0.0.2", port: 9043 },
    ]);
  });

  it("requires host, keyspace and table", () => {
    for (const name of ["host", "keyspace", "table"]) {
      const raw: Record<string, string> = { ...base };
      delete raw[name];
      const error = errorOf(raw, "write");
      expect(error.errorClass).toBe("OPTION_REQUIRED");
      expect(error.parameters.option).toBe(name);
    }
  });

  it("rejects a bad consistency level with a suggestion", () => {
    const error = errorOf({ ...base, consistency: "LOCAL_QUORM" }, "write");
    expect(error.errorClass).toBe("OPTION_INVALID_VALUE");
    expect(error.parameters.option).toBe("consistency");
    expect(error.message).toContain("did you mean 'LOCAL_QUORUM'?");
  });

  it("refuses SERIAL levels for writes and ANY for reads", () => {
    expect(errorOf({ ...base, consistency: "LOCAL_SERIAL" }, "write").message).toContain("only applies to reads");
    expect(parseCassandraOptions({ ...base, consistency: "SERIAL" }, "read").consistency).toBe("SERIAL");
    expect(errorOf({ ...base, consistency: "ANY" }, "read").message).toContain("only applies to writes");
    expect(parseCassandraOptions({ ...base, consistency: "ANY" }, "write").consistency).toBe("ANY");
  });

  it("refuses ssl_ca_cert without ssl_enabled", () => {
    const error = errorOf({ ...base, ssl_ca_cert: "/etc/ca.pem" }, "read");
    expect(error.errorClass).toBe("OPTION_CONFLICT");
    expect(error.parameters.option).toBe("ssl_enabled");
    expect(error.message).toContain("ssl_ca_cert");
  });

  it("refuses a username without a password and the reverse, never echoing the password", () => {
    const noPassword = errorOf({ ...base, username: "alice" }, "read");
    expect(noPassword.errorClass).toBe("OPTION_CONFLICT");
    expect(noPassword.parameters.option).toBe("password");
    const noUser = errorOf({ ...base, password: "hunter2" }, "write");
    expect(noUser.parameters.option).toBe("username");
    expect(noUser.message).not.toContain("hunter2");
  });

  it("refuses the delete flag options alone", () => {
    const noValue = errorOf({ ...base, delete_flag_column: "is_deleted" }, "write");
    expect(noValue.errorClass).toBe("OPTION_CONFLICT");
    expect(noValue.parameters.option).toBe("delete_flag_value");
    const noColumn = errorOf({ ...base, delete_flag_value: "true" }, "write");
    expect(noColumn.parameters.option).toBe("delete_flag_column");
    // Write-only options are accepted and ignored on reads.
    expect(parseCassandraOptions({ ...base, delete_flag_column: "x" }, "read").delete_flag_column).toBe("x");
  });

  it("rejects unknown options with a did-you-mean", () => {
    const error = errorOf({ ...base, keyspce: "x" }, "read");
    expect(error.errorClass).toBe("OPTION_UNKNOWN");
    expect(error.parameters.suggestion).toBe("keyspace");
  });

  it("checks the filter for what belongs elsewhere", () => {
    expect(errorOf({ ...base, filter: "WHERE age > 3" }, "read").parameters.option).toBe("filter");
    expect(errorOf({ ...base, filter: "age > 3; DROP TABLE users" }, "read").message).toContain("';'");
    expect(errorOf({ ...base, filter: "age > 3 ALLOW FILTERING" }, "read").message).toContain("allow_filtering");
    expect(parseCassandraOptions({ ...base, filter: "name = 'a;b'" }, "read").filter).toBe("name = 'a;b'");
  });

  it("checks numeric ranges", () => {
    expect(errorOf({ ...base, concurrency: "0" }, "write").parameters.option).toBe("concurrency");
    expect(errorOf({ ...base, port: "70000" }, "write").parameters.option).toBe("port");
    expect(errorOf({ ...base, read_page_size: "abc" }, "read").parameters.option).toBe("read_page_size");
  });
});

describe("parseContactPoints", () => {
  it("parses names, ports and IPv6 addresses", () => {
    expect(parseContactPoints("a.example.com, 10.0.0.1:9043,::1,[fe80::1]:9999", 9042)).toEqual([
      { host: "a.example.com", port: 9042 },
      { host: "10.0.0.1", port: 9043 },
      { host: "::1", port: 9042 },
      { host: "fe80::1", port: 9999 },
    ]);
  });

  it("names the bad contact point", () => {
    for (const raw of ["10.0.0.1:0", "10.0.0.1:port", "bad host", ",,"]) {
      try {
        parseContactPoints(raw, 9042);
        throw new Error("expected an error");
      } catch (error) {
        expect((error as ConduitError).errorClass).toBe("OPTION_INVALID_VALUE");
        expect((error as ConduitError).parameters.option).toBe("host");
      }
    }
  });
});
