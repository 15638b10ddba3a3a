import { describe, expect, it } from "vitest";
import { thrown } from "../../../tests/support/conduit-error.js";
import { dynamoDbOptions, parseDynamoDbOptions, parseStartingPosition } from "./options.js";

const base = { table_name: "users", aws_region: "us-east-1" };

const errorOf = (raw: Record<string, string>, operation: "read" | "write") => thrown(() => parseDynamoDbOptions(raw, operation));

describe("dynamodb options", () => {
  it("applies the seed's defaults for reads", () => {
    const options = parseDynamoDbOptions(base, "read");
    expect(options).toMatchObject({ table_name: "users", aws_region: "us-east-1", total_segments: 1, consistent_read: false, schema_sample_size: 100 });
    expect(options.read_page_size).toBeUndefined();
    expect(options.endpoint_url).toBeUndefined();
  });

  it("applies the defaults for writes", () => {
    expect(parseDynamoDbOptions(base, "write")).toMatchObject({
      create_table: false,
      billing_mode: "PAY_PER_REQUEST",
      write_concurrency: 16,
      max_retry_seconds: 120,
      confirm_truncate: false,
    });
  });

  it("parses every option, keys case-insensitively", () => {
    const options = parseDynamoDbOptions(
      {
        TABLE_NAME: "users",
        aws_region: "eu-west-1",
        aws_access_key_id: "AKIDEXAMPLE",
        aws_secret_access_key: "secret",
        aws_session_token: "token",
        endpoint_url: "http://localhost:8000",
        delete_flag_column: "is_deleted",
        delete_flag_value: "true",
        create_table: "true",
        hash_key: "id",
        range_key: "ts",
        billing_mode: "provisioned",
        read_capacity_units: "5",
        write_capacity_units: "10",
        write_concurrency: "32",
        max_retry_seconds: "0",
        confirm_truncate: "true",
        checkpointLocation: "/tmp/cp",
      },
      "write",
    );
    expect(options).toMatchObject({
      table_name: "users",
      billing_mode: "PROVISIONED",
      read_capacity_units: 5,
      write_capacity_units: 10,
      write_concurrency: 32,
      max_retry_seconds: 0,
      create_table: true,
    });
    expect(parseDynamoDbOptions({ ...base, total_segments: "8", consistent_read: "true", read_page_size: "50", schema_sample_size: "5" }, "read")).toMatchObject({
      total_segments: 8,
      consistent_read: true,
      read_page_size: 50,
      schema_sample_size: 5,
    });
  });

  it("requires table_name and aws_region", () => {
    expect(errorOf({ aws_region: "us-east-1" }, "read")).toMatchObject({ errorClass: "OPTION_REQUIRED", parameters: { option: "table_name" } });
    expect(errorOf({ table_name: "users" }, "write")).toMatchObject({ errorClass: "OPTION_REQUIRED", parameters: { option: "aws_region" } });
  });

  it("rejects unknown options with a suggestion, and bad values", () => {
    const unknown = errorOf({ ...base, total_segment: "4" }, "read");
    expect(unknown.errorClass).toBe("OPTION_UNKNOWN");
    expect(unknown.message).toContain("total_segments");
    expect(errorOf({ ...base, total_segments: "0" }, "read").parameters.option).toBe("total_segments");
    expect(errorOf({ ...base, total_segments: "1000001" }, "read").errorClass).toBe("OPTION_INVALID_VALUE");
    expect(errorOf({ ...base, consistent_read: "yes" }, "read").parameters.option).toBe("consistent_read");
    expect(errorOf({ ...base, billing_mode: "ON_DEMAND" }, "write").parameters.option).toBe("billing_mode");
    expect(errorOf({ ...base, write_concurrency: "0" }, "write").parameters.option).toBe("write_concurrency");
    expect(errorOf({ ...base, table_name: "a b" }, "read").parameters.option).toBe("table_name");
    expect(errorOf({ ...base, aws_region: "US East" }, "read").parameters.option).toBe("aws_region");
    expect(errorOf({ ...base, endpoint_url: "localhost:8000" }, "read").parameters.option).toBe("endpoint_url");
  });

  it("accepts a table ARN", () => {
    expect(parseDynamoDbOptions({ ...base, table_name: "arn:aws:dynamodb:us-east-1:123456789012:table/users" }, "read").table_name).toContain("table/users");
  });

  it("never echoes a secret in an error", () => {
    const error = errorOf({ ...base, aws_secret_access_key: " " }, "read");
    expect(error.message).toContain("(hidden)");
    expect(error.parameters.value).toBe("");
  });

  it("requires both halves of static credentials", () => {
    expect(errorOf({ ...base, aws_access_key_id: "AKID" }, "read")).toMatchObject({ errorClass: "OPTION_CONFLICT", parameters: { option: "aws_secret_access_key" } });
    expect(errorOf({ ...base, aws_secret_access_key: "s" }, "read")).toMatchObject({ errorClass: "OPTION_CONFLICT", parameters: { option: "aws_access_key_id" } });
    expect(errorOf({ ...base, aws_session_token: "t" }, "read")).toMatchObject({ errorClass: "OPTION_CONFLICT", parameters: { option: "aws_session_token" } });
  });

  it("requires delete_flag_column and delete_flag_value together", () => {
    const noValue = errorOf({ ...base, delete_flag_column: "is_deleted" }, "write");
    expect(noValue).toMatchObject({ code: "INVALID_ARGUMENT", errorClass: "OPTION_CONFLICT", parameters: { option: "delete_flag_value" } });
    expect(noValue.message).toContain("'delete_flag_column' needs 'delete_flag_value'");
    expect(errorOf({ ...base, delete_flag_value: "true" }, "write").parameters.option).toBe("delete_flag_column");
    // Write options are accepted and ignored when reading.
    expect(parseDynamoDbOptions({ ...base, delete_flag_column: "is_deleted" }, "read").table_name).toBe("users");
  });

  it("checks the create_table and key options", () => {
    expect(errorOf({ ...base, create_table: "true" }, "write")).toMatchObject({ errorClass: "OPTION_CONFLICT", parameters: { option: "hash_key" } });
    expect(errorOf({ ...base, range_key: "ts" }, "write")).toMatchObject({ errorClass: "OPTION_CONFLICT", parameters: { option: "hash_key" } });
    expect(errorOf({ ...base, hash_key: "id", range_key: "id" }, "write").parameters.option).toBe("range_key");
    expect(errorOf({ ...base, hash_key: "id", delete_flag_column: "id", delete_flag_value: "x" }, "write").parameters.option).toBe("delete_flag_column");
  });

  it("allows capacities only with PROVISIONED tables created by the write, and requires them there", () => {
    const payPerRequest = errorOf({ ...base, create_table: "true", hash_key: "id", read_capacity_units: "5" }, "write");
    expect(payPerRequest).toMatchObject({ errorClass: "OPTION_CONFLICT", parameters: { option: "read_capacity_units" } });
    expect(payPerRequest.message).toContain("PROVISIONED");
    const notCreating = errorOf({ ...base, billing_mode: "PROVISIONED", write_capacity_units: "5" }, "write");
    expect(notCreating.message).toContain("create_table");
    const missing = errorOf({ ...base, create_table: "true", hash_key: "id", billing_mode: "PROVISIONED", read_capacity_units: "5" }, "write");
    expect(missing).toMatchObject({ errorClass: "OPTION_REQUIRED", parameters: { option: "write_capacity_units" } });
  });

  it("renders an options table for the README", () => {
    const markdown = dynamoDbOptions.toMarkdown();
    for (const name of ["table_name", "total_segments", "confirm_truncate", "max_retry_seconds", "write_concurrency", "schema_sample_size"]) {
      expect(markdown).toContain(`\`${name}\``);
    }
    expect(dynamoDbOptions.secretNames()).toEqual(new Set(["service_token", "aws_secret_access_key", "aws_session_token"]));
  });

  describe("starting_position", () => {
    it.each([
      ["trim_horizon", { type: "trim_horizon" }],
      ["TRIM_HORIZON", { type: "trim_horizon" }],
      [" earliest ", { type: "trim_horizon" }],
      ["latest", { type: "latest" }],
      ["Latest", { type: "latest" }],
      ["2026-11-25T10:00:00Z", { type: "timestamp", at: new Date(Date.UTC(2026, 10, 25, 10)) }],
      ["2026-11-25t10:00:00.250z", { type: "timestamp", at: new Date(Date.UTC(2026, 10, 25, 10, 0, 0, 250)) }],
      ["2026-11-25T10:00:00+02:00", { type: "timestamp", at: new Date(Date.UTC(2026, 10, 25, 8)) }],
      ["2026-11-25T10:00-05:00", { type: "timestamp", at: new Date(Date.UTC(2026, 10, 25, 15)) }],
      ["2026-11-25T10:00:00", { type: "timestamp", at: new Date(Date.UTC(2026, 10, 25, 10)) }],
      ["2026-11-25 10:30", { type: "timestamp", at: new Date(Date.UTC(2026, 10, 25, 10, 30)) }],
      ["2026-11-25", { type: "timestamp", at: new Date(Date.UTC(2026, 10, 25)) }],
      ["2028-02-29T23:59:59-01:00", { type: "timestamp", at: new Date(Date.UTC(2028, 2, 1, 0, 59, 59)) }],
    ])("reads %j", (text, expected) => {
      expect(parseStartingPosition(text)).toEqual(expected);
    });

    it.each(["yesterday", "now", "horizon", "2026-13-01", "2026-02-30", "2026-04-31T10:00:00Z", "2026-11-25T25:00:00Z", "2026/11/25", "1764064800", "2026-11-25T10:00:00 UTC"])("refuses %j naming the option", (text) => {
      const error = errorOf({ ...base, starting_position: text }, "read");
      expect(error).toMatchObject({ code: "INVALID_ARGUMENT", errorClass: "OPTION_INVALID_VALUE", parameters: { option: "starting_position", value: text } });
      expect(error.message).toContain("'starting_position'");
      expect(error.message).toContain("trim_horizon");
    });

    it("is kept as given, and the other stream options have their defaults and bounds", () => {
      const options = parseDynamoDbOptions({ ...base, starting_position: "latest" }, "read");
      expect(options).toMatchObject({ starting_position: "latest", fail_on_data_loss: true });
      expect(options.max_records_per_trigger).toBeUndefined();
      expect(parseDynamoDbOptions({ ...base, starting_position: "latest", fail_on_data_loss: "false", max_records_per_trigger: "500" }, "read")).toMatchObject({
        fail_on_data_loss: false,
        max_records_per_trigger: 500,
      });
      expect(errorOf({ ...base, fail_on_data_loss: "no" }, "read").parameters.option).toBe("fail_on_data_loss");
      expect(errorOf({ ...base, max_records_per_trigger: "0" }, "read").parameters.option).toBe("max_records_per_trigger");
      expect(parseDynamoDbOptions(base, "read").starting_position).toBeUndefined();
    });
  });
});
