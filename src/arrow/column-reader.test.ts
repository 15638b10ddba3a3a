import { Binary, DateMillisecond, Decimal, Float16, Int32, LargeUtf8, makeVector, TimestampSecond, Uint64, Utf8, vectorFromArray, type RecordBatch, type Vector } from "apache-arrow";
import { describe, expect, it } from "vitest";
import { BatchBuilder } from "./batch-builder.js";
import { columnReader, firstNullOrEmpty, readColumn } from "./column-reader.js";
import { decodeBatches, encodeBatch } from "./ipc.js";
import { rows, schema } from "./test-fixtures.js";
import { bigIntToWords, DecimalValue, readValue, type PlainValue } from "./values.js";

/** What arrow-js's own `get` gives, cell by cell: the reference. */
const cellByCell = (vector: Vector): PlainValue[] => Array.from({ length: vector.length }, (_, i) => readValue(vector, i));

function fixtureBatch(): RecordBatch {
  const builder = new BatchBuilder(schema);
  for (let repeat = 0; repeat < 7; repeat++) for (const row of rows) builder.appendRow(row);
  // Through IPC, as the service receives batches.
  return decodeBatches(encodeBatch(builder.flush()))[0]!;
}

describe("readColumn", () => {
  it("reads every column type, nulls and nested values exactly as readValue does", () => {
    const batch = fixtureBatch();
    for (const field of schema.fields) {
      const vector = batch.getChild(field.name)!;
      expect(readColumn(vector), field.name).toEqual(cellByCell(vector));
      const read = columnReader(vector);
      // Out of order, as a reader is asked for rows.
      for (const i of [5, 0, vector.length - 1, 3]) expect(read(i), `${field.name}[${i}]`).toEqual(readValue(vector, i));
    }
  });

  it("honours slices (offsets into validity bitmaps and booleans) and vectors of several chunks", () => {
    const batch = fixtureBatch();
    for (const field of schema.fields) {
      const vector = batch.getChild(field.name)!;
      for (const [start, end] of [
        [1, 2],
        [3, 17],
        [5, 21],
      ] as const) {
        const slice = vector.slice(start, end);
        expect(readColumn(slice), `${field.name}[${start}, ${end})`).toEqual(cellByCell(vector).slice(start, end));
      }
      const chunked = vector.slice(0, 4).concat(vector.slice(4));
      expect(chunked.data.length).toBe(2);
      expect(readColumn(chunked), `${field.name} in two chunks`).toEqual(cellByCell(vector));
      const read = columnReader(chunked);
      expect(Array.from({ length: chunked.length }, (_, i) => read(i)), `${field.name} row by row, in two chunks`).toEqual(cellByCell(vector));
    }
  });

  it("reads decimals on both sides of the 53-bit and 64-bit boundaries", () => {
    const values = [0n, 1n, -1n, 2n ** 53n - 1n, 2n ** 53n, -(2n ** 53n), -(2n ** 53n) - 1n, 2n ** 63n, -(2n ** 63n) - 1n, 10n ** 38n - 1n, -(10n ** 38n) + 1n];
    const words = new Uint32Array(values.length * 4);
    values.forEach((v, i) => words.set(bigIntToWords(v, 4), i * 4));
    const vector = makeVector({ type: new Decimal(3, 38, 128), length: values.length, data: words });
    expect(readColumn(vector).map((d) => (d as DecimalValue).unscaled)).toEqual(values);
    expect((readColumn(vector)[1] as DecimalValue).toString()).toBe("0.001");
  });

  it("falls back to arrow-js for types it has no reader for", () => {
    const vectors = {
      u64: vectorFromArray([1n, null, 2n ** 64n - 1n], new Uint64()),
      f16: vectorFromArray([0.5, null, -2], new Float16()),
      dms: vectorFromArray([new Date(86_400_000), null, new Date(0)], new DateMillisecond()),
      ts: vectorFromArray([1_700_000_000_000, null, 0], new TimestampSecond()),
    };
    for (const [name, vector] of Object.entries(vectors)) expect(readColumn(vector), name).toEqual(cellByCell(vector));
    expect(readColumn(vectors.u64)).toEqual([1n, null, 2n ** 64n - 1n]);
  });

  it("reads an empty column", () => {
    const batch = new BatchBuilder(schema).flush();
    for (const field of schema.fields) expect(readColumn(batch.getChild(field.name)!)).toEqual([]);
  });
});

describe("firstNullOrEmpty", () => {
  it("finds the first null, or empty string or binary, from bitmaps and offsets", () => {
    const text = vectorFromArray(["a", "bb", null, "", "c"], new Utf8());
    expect(firstNullOrEmpty(text, false)).toBe(2);
    expect(firstNullOrEmpty(text, true)).toBe(2);
    expect(firstNullOrEmpty(text.slice(3), false)).toBe(-1);
    expect(firstNullOrEmpty(text.slice(3), true)).toBe(0);
    const chunked = vectorFromArray(["a", "b"], new Utf8()).concat(vectorFromArray(["c", "", null], new Utf8()));
    expect(firstNullOrEmpty(chunked, true)).toBe(3);
    expect(firstNullOrEmpty(chunked, false)).toBe(4);
    expect(firstNullOrEmpty(vectorFromArray(["x", ""], new LargeUtf8()), true)).toBe(1);
    expect(firstNullOrEmpty(vectorFromArray([new Uint8Array([1]), new Uint8Array(0)], new Binary()), true)).toBe(1);
    expect(firstNullOrEmpty(vectorFromArray([1, 0, null], new Int32()), true)).toBe(2);
    expect(firstNullOrEmpty(vectorFromArray(["a", "b"], new Utf8()), true)).toBe(-1);
  });
});
