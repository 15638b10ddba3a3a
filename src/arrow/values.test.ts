import { describe, expect, it } from "vitest";
import { decodeBatches, decodeSchema, encodeBatch, encodeSchema } from "./ipc.js";
import { DecimalValue, bigIntToWords, describeType, readValue, wordsToBigInt, type PlainValue } from "./values.js";
import { BatchBuilder } from "./batch-builder.js";
import { rows, schema } from "./test-fixtures.js";

function roundTrip(values: PlainValue[][]): PlainValue[][] {
  const builder = new BatchBuilder(schema);
  for (const row of values) builder.appendRow(row);
  const batch = builder.flush();
  const [decoded] = decodeBatches(encodeBatch(batch));
  return Array.from({ length: decoded!.numRows }, (_, r) => schema.fields.map((_f, c) => readValue(decoded!.getChildAt(c)!, r)));
}

describe("Arrow plain values", () => {
  it("round-trips every supported type, nulls and nested values through IPC", () => {
    const back = roundTrip(rows);
    expect(back[0]!.slice(0, 7)).toEqual(rows[0]!.slice(0, 7));
    expect((back[0]![7] as DecimalValue).toString()).toBe("-12345678901234567890123456789012.123456");
    expect(back[0]![8]).toBe(true);
    expect(Array.from(back[0]![9] as Uint8Array)).toEqual([0, 1, 255]);
    expect(back[0]![10]).toBe(19723);
    expect(back[0]![11]).toBe(1704067200123456n);
    expect((back[0]![12] as PlainValue[]).map((v) => (v === null ? null : (v as DecimalValue).toString()))).toEqual(["1.50", null, "-0.01"]);
    expect(back[0]![13]).toEqual([
      ["a", 1n],
      ["b", null],
    ]);
    expect(back[0]![14]).toEqual({ city: "Oslo", tags: ["x", null] });
    expect(back[1]).toEqual(new Array(15).fill(null));
    expect(back[2]![0]).toBe("");
    expect(back[2]![10]).toBe(-1);
    expect(back[2]![11]).toBe(-1n);
    expect(back[2]![12]).toEqual([]);
    expect(back[2]![13]).toEqual([]);
    expect(back[2]![14]).toEqual({ city: null, tags: [] });
  });

  it("encodes an empty batch and a schema-only stream", () => {
    expect(roundTrip([])).toEqual([]);
    const decoded = decodeSchema(encodeSchema(schema))!;
    expect(decoded.fields.map((f) => f.name)).toEqual(schema.fields.map((f) => f.name));
    expect(decodeSchema(new Uint8Array())).toBeUndefined();
  });

  it("keeps large strings intact", () => {
    const big = "x".repeat(5 * 1024 * 1024) + "end";
    const values = new Array(15).fill(null) as PlainValue[];
    values[0] = big;
    expect(roundTrip([values])[0]![0]).toBe(big);
  });

  it("rejects bytes that are not Arrow with a clear error", () => {
    expect(() => decodeBatches(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))).toThrow(/could not be decoded/);
  });

  it("names types the way Spark does", () => {
    expect(schema.fields.map((f) => describeType(f.type))).toEqual([
      "string",
      "tinyint",
      "smallint",
      "int",
      "bigint",
      "float",
      "double",
      "decimal(38,6)",
      "boolean",
      "binary",
      "date",
      "timestamp",
      "array<decimal(10,2)>",
      "map<string,bigint>",
      "struct<city:string,tags:array<string>>",
    ]);
  });
});

describe("DecimalValue", () => {
  it("parses and prints exactly", () => {
    expect(DecimalValue.parse("0.1").toString()).toBe("0.1");
    expect(DecimalValue.parse("-0.001").toString()).toBe("-0.001");
    expect(DecimalValue.parse("1e3").toString()).toBe("1000");
    expect(DecimalValue.parse("1.5e-3").toString()).toBe("0.0015");
    expect(DecimalValue.parse("123456789012345678901234567890.5").unscaled).toBe(1234567890123456789012345678905n);
    expect(DecimalValue.parse("2.50", 4).toString()).toBe("2.5000");
    expect(DecimalValue.parse("2.50").toNormalizedString()).toBe("2.5");
    expect(DecimalValue.parse("200").toNormalizedString()).toBe("200");
    expect(() => DecimalValue.parse("1.25", 1)).toThrow(RangeError);
    expect(() => DecimalValue.parse("abc")).toThrow(RangeError);
    expect(() => DecimalValue.parse(".")).toThrow(RangeError);
  });

  it("converts two's-complement words both ways", () => {
    for (const v of [0n, 1n, -1n, 2n ** 100n, -(2n ** 126n), 10n ** 38n - 1n]) expect(wordsToBigInt(bigIntToWords(v, 4))).toBe(v);
  });
});
