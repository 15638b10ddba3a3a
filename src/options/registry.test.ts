import { describe, expect, it } from "vitest";
import { thrown } from "../../tests/support/conduit-error.js";
import { commonOptions } from "./common.js";
import { OptionRegistry, booleanOption, enumOption, integerOption, listOption, stringOption } from "./registry.js";

const registry = new OptionRegistry("demo", {
  ...commonOptions,
  table_name: stringOption({ description: "The table.", required: true }),
  total_segments: integerOption({ description: "Segments.", scope: "read", default: 1, min: 1, max: 100 }),
  consistent_read: booleanOption({ description: "Strong reads.", scope: "read", default: false }),
  consistency: enumOption({ description: "Level.", values: ["ONE", "LOCAL_QUORUM"] as const, default: "LOCAL_QUORUM" }),
  host: listOption({ description: "Hosts." }),
  delete_flag_column: stringOption({ description: "Flag.", scope: "write", required: true }),
  password: stringOption({ description: "Secret.", secret: true }),
});

const errorOf = thrown;

describe("OptionRegistry", () => {
  it("parses typed values and fills defaults", () => {
    const parsed = registry.parse({ TABLE_NAME: "users", total_segments: " 4 ", consistency: "one", host: "a, b,,c" }, "read");
    expect(parsed).toMatchObject({ table_name: "users", total_segments: 4, consistent_read: false, consistency: "ONE", host: ["a", "b", "c"] });
  });

  it("rejects unknown options with a suggestion", () => {
    const error = errorOf(() => registry.parse({ tabel_name: "x" }, "read"));
    expect(error.errorClass).toBe("OPTION_UNKNOWN");
    expect(error.message).toContain("Unknown option 'tabel_name' for format 'demo'. Did you mean 'table_name'?");
    expect(error.parameters).toMatchObject({ option: "tabel_name", suggestion: "table_name" });
  });

  it("accepts and ignores the shim's and Spark's options", () => {
    const parsed = registry.parse({ table_name: "t", checkpointLocation: "/tmp/c", service_endpoint: "unix:/x", service_token: "t" }, "read") as Record<string, unknown>;
    expect(parsed.checkpointlocation).toBeUndefined();
    expect(parsed.service_token).toBeUndefined();
  });

  it("is strict about booleans and integers", () => {
    expect(errorOf(() => registry.parse({ table_name: "t", consistent_read: "yes" }, "read")).message).toBe(
      "Option 'consistent_read' has the invalid value 'yes': expected 'true' or 'false'.",
    );
    expect(errorOf(() => registry.parse({ table_name: "t", total_segments: "2.5" }, "read")).errorClass).toBe("OPTION_INVALID_VALUE");
    expect(errorOf(() => registry.parse({ table_name: "t", total_segments: "0" }, "read")).message).toContain("expected an integer from 1 to 100");
    expect(errorOf(() => registry.parse({ table_name: "t", consistency: "LOCAL_QUORAM" }, "read")).message).toContain("did you mean 'LOCAL_QUORUM'?");
    expect(errorOf(() => registry.parse({ table_name: " " }, "read")).message).toContain("expected a non-empty string");
  });

  it("requires options only for the operation they apply to", () => {
    expect(() => registry.parse({ table_name: "t" }, "read")).not.toThrow();
    const error = errorOf(() => registry.parse({ table_name: "t" }, "write"));
    expect(error.errorClass).toBe("OPTION_REQUIRED");
    expect(error.message).toContain("Option 'delete_flag_column' is required to write format 'demo'");
    expect(errorOf(() => registry.parse({}, "read")).parameters.option).toBe("table_name");
  });

  it("never echoes a secret value", () => {
    const error = errorOf(() => registry.parse({ table_name: "t", password: "  " }, "read"));
    expect(error.message).not.toContain("'  '");
    expect(error.message).toContain("(hidden)");
  });

  it("renders a Markdown table", () => {
    const table = registry.toMarkdown((s) => !s.clientSide);
    expect(table.split("\n")[0]).toBe("| Option | For | Type | Default | Required | Description |");
    expect(table).toContain("| `total_segments` | read | integer | `1` | no | Segments. |");
    expect(table).toContain("| `consistency` | read, write | ONE \\| LOCAL_QUORUM | `LOCAL_QUORUM` | no | Level. |");
    expect(table).not.toContain("service_endpoint");
  });
});
