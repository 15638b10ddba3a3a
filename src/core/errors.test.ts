import { describe, expect, it } from "vitest";
import { closestMatch, editDistance } from "./did-you-mean.js";
import { decodeDescriptor, encodeDescriptor } from "./descriptor.js";
import { clip, ConduitError, redactSecrets, toConduitError } from "./errors.js";

describe("errors", () => {
  it("keeps code, class, parameters and cause", () => {
    const cause = new Error("socket hang up");
    const error = new ConduitError({ code: "UNAVAILABLE", errorClass: "X", message: "m", parameters: { a: "b" }, cause });
    expect(error).toMatchObject({ code: "UNAVAILABLE", errorClass: "X", message: "m", parameters: { a: "b" } });
    expect(error.cause).toBe(cause);
  });

  it("wraps unknown errors as INTERNAL without secrets", () => {
    const wrapped = toConduitError(new Error("bad request password=hunter2 and AKIAABCDEFGHIJKLMNOP"), "Describe");
    expect(wrapped.code).toBe("INTERNAL");
    expect(wrapped.message).toBe("Describe failed: Error: bad request password=*** and ***");
    expect(redactSecrets('aws_secret_access_key: "abc def"')).toBe("aws_secret_access_key: ***");
  });
});

describe("did you mean", () => {
  it("finds close names only", () => {
    expect(editDistance("tabel_name", "table_name")).toBe(1);
    expect(closestMatch("tabel_name", ["table_name", "aws_region"])).toBe("table_name");
    expect(closestMatch("zzz", ["table_name", "aws_region"])).toBeUndefined();
  });
});

describe("descriptors", () => {
  it("round-trip and refuse foreign bytes", () => {
    const bytes = encodeDescriptor("scan-segment", { segment: 2, totalSegments: 4 });
    expect(decodeDescriptor<{ segment: number }>("scan-segment", bytes).segment).toBe(2);
    expect(() => decodeDescriptor("write-plan", bytes)).toThrow(/Expected a version 1 'write-plan' descriptor/);
    expect(() => decodeDescriptor("scan-segment", new TextEncoder().encode("{"))).toThrow(/not valid JSON/);
  });
});

describe("input a client can make arbitrarily long", () => {
  it("clip escapes control characters and cuts long text, saying how long it was", () => {
    expect(clip("tab\there")).toBe("tab\\u0009here");
    expect(clip("x".repeat(1_000_000))).toBe(`${"x".repeat(100)}... (1000000 characters)`);
  });

  it("closestMatch stays cheap for a megabyte-long name and still suggests for short ones", () => {
    const started = performance.now();
    expect(closestMatch("x".repeat(1_000_000), ["table_name", "aws_region"])).toBeUndefined();
    expect(closestMatch("table_nam", ["table_name", "aws_region", "x".repeat(100_000)])).toBe("table_name");
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
