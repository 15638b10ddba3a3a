import { DateMillisecond, Field, Float16, Int32, Schema, TimestampMillisecond, TimestampSecond, Uint64, Utf8, type RecordBatch } from "apache-arrow";
import { describe, expect, it } from "vitest";
import { BatchBuilder } from "./batch-builder.js";
import { decodeBatches, encodeBatch } from "./ipc.js";
import { rows, schema } from "./test-fixtures.js";
import { DecimalValue, readValue, type PlainValue } from "./values.js";

const ipc = (batch: RecordBatch) => decodeBatches(encodeBatch(batch))[0]!;
const column = (batch: RecordBatch, name: string) => Array.from({ length: batch.numRows }, (_, i) => readValue(batch.getChild(name)!, i));

describe("BatchBuilder", () => {
  it("grows past its initial buffers and starts over after each flush", () => {
    const builder = new BatchBuilder(schema);
    const n = 5_000;
    for (let i = 0; i < n; i++) builder.appendRow(rows[i % rows.length]!);
    expect(builder.length).toBe(n);
    const first = ipc(builder.flush());
    expect(builder.length).toBe(0);
    builder.appendRow(rows[0]!);
    const second = ipc(builder.flush());
    expect(first.numRows).toBe(n);
    expect(second.numRows).toBe(1);
    for (const field of schema.fields) {
      const values = column(first, field.name);
      for (let i = 0; i < n; i++) expect(values[i], `${field.name}[${i}]`).toEqual(values[i % rows.length]);
      expect(column(second, field.name)[0], field.name).toEqual(values[0]);
    }
  });

  it("encodes strings of every width and keeps decimals exact at the 64-bit boundary", () => {
    const s = new Schema([new Field("s", new Utf8(), true), new Field("dec", schema.fields[7]!.type, true)]);
    // Around the short-text fast path: ASCII up to 32 characters is encoded in JavaScript,
    // a non-ASCII character anywhere sends the whole string to the native encoder.
    const texts = ["", "ascii", "é", "✓✓", "😀 surrogate pair", "x".repeat(70_000), "a".repeat(32), "a".repeat(31) + "é", "é" + "a".repeat(31), "a".repeat(33), "abc\u007f\u0080", "\u0000"];
    const decimals = ["0", "-0.000001", "9223372036854.775807", "9223372036854.775808", "-9223372036854.775808", "-9223372036854.775809", "12345678901234567890123456789012.123456"];
    const builder = new BatchBuilder(s);
    for (let i = 0; i < Math.max(texts.length, decimals.length); i++) builder.appendRow([texts[i] ?? null, decimals[i] === undefined ? null : DecimalValue.parse(decimals[i]!)]);
    const batch = ipc(builder.flush());
    expect(column(batch, "s")).toEqual(texts);
    const expectedDecimals = texts.map((_, i) => (decimals[i] === undefined ? null : DecimalValue.parse(decimals[i]!, 6).toString()));
    expect(column(batch, "dec").map((d) => (d === null ? null : (d as DecimalValue).toString()))).toEqual(expectedDecimals);
  });

  it("rescales decimals to the column's scale and refuses to drop digits", () => {
    const builder = new BatchBuilder(new Schema([new Field("dec", schema.fields[7]!.type, true)]));
    builder.appendRow([DecimalValue.parse("1.5")]);
    expect((column(ipc(builder.flush()), "dec")[0] as DecimalValue).toString()).toBe("1.500000");
    expect(() => builder.appendRow([DecimalValue.parse("0.0000001")])).toThrow(RangeError);
  });

  it("builds types without a fast path through arrow-js", () => {
    const s = new Schema([
      new Field("u64", new Uint64(), true),
      new Field("f16", new Float16(), true),
      new Field("dms", new DateMillisecond(), true),
      new Field("tss", new TimestampSecond(), true),
      new Field("tsm", new TimestampMillisecond(), true),
    ]);
    const builder = new BatchBuilder(s);
    expect(ipc(builder.flush()).numRows).toBe(0);
    builder.appendRow([2n ** 64n - 1n, 0.5, 19_000, 1_700_000_000_000_000n, -1n]);
    builder.appendRow([null, null, null, null, null]);
    const batch = ipc(builder.flush());
    expect(batch.schema.fields.map((f) => column(batch, f.name))).toEqual([[2n ** 64n - 1n, null], [0.5, null], [19_000, null], [1_700_000_000_000_000n, null], [-1000n, null]]);
  });

  it("writes numbers given as bigint and bigints given as numbers", () => {
    const builder = new BatchBuilder(new Schema([new Field("i", new Int32(), true), new Field("l", schema.fields[4]!.type, true)]));
    builder.appendRow([7n as PlainValue, 7]);
    expect(ipc(builder.flush()).toArray()[0]!.toJSON()).toEqual({ i: 7, l: 7n });
  });
});
