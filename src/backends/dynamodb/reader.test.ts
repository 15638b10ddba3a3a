import { describe, expect, it } from "vitest";
import { Field, Int32, Schema, Utf8, type RecordBatch } from "apache-arrow";
import { ConduitError } from "../../core/errors.js";
import { silentLogger } from "../../core/logger.js";
import { readValue } from "../../arrow/values.js";
import { scanRequest, scanSegment, type ScanSegmentInput } from "./reader.js";
import { FakeDynamoDb } from "./test-fakes.js";

const schema = new Schema([new Field("id", new Utf8()), new Field("name", new Utf8()), new Field("size", new Int32())]);

function setup(count: number, overrides: Partial<ScanSegmentInput> = {}) {
  const api = new FakeDynamoDb();
  api.addTable("t1", { name: "id", type: "S" });
  for (let i = 0; i < count; i++) api.put("t1", { id: { S: `k${i}` }, name: { S: `n${i}` }, size: { N: String(i) }, extra: { S: "not requested" } });
  const input: ScanSegmentInput = {
    api,
    table: "t1",
    schema,
    segment: 0,
    totalSegments: 1,
    consistentRead: false,
    pageSize: 10,
    signal: new AbortController().signal,
    errorContext: { table: "t1", region: "us-east-1", endpoint: undefined, operation: "Scan" },
    logger: silentLogger,
    ...overrides,
  };
  return { api, input };
}

async function collect(iterable: AsyncIterable<RecordBatch>): Promise<RecordBatch[]> {
  const out: RecordBatch[] = [];
  for await (const b of iterable) out.push(b);
  return out;
}

describe("scanRequest", () => {
  it("projects every column through expression attribute names (reserved words)", () => {
    const request = scanRequest({ table: "t1", schema, segment: 2, totalSegments: 4, consistentRead: true, pageSize: 50 }, { id: { S: "x" } });
    expect(request).toEqual({
      TableName: "t1",
      ConsistentRead: true,
      Segment: 2,
      TotalSegments: 4,
      Limit: 50,
      ExclusiveStartKey: { id: { S: "x" } },
      ProjectionExpression: "#c0, #c1, #c2",
      ExpressionAttributeNames: { "#c0": "id", "#c1": "name", "#c2": "size" },
    });
  });

  it("counts instead of projecting when no column is requested", () => {
    const request = scanRequest({ table: "t1", schema: new Schema([]), segment: 0, totalSegments: 1, consistentRead: false, pageSize: undefined }, undefined);
    expect(request).toEqual({ TableName: "t1", ConsistentRead: false, Select: "COUNT" });
  });
});

describe("scanSegment", () => {
  it("yields one batch per page with only the requested columns, following LastEvaluatedKey", async () => {
    const { api, input } = setup(25);
    const batches = await collect(scanSegment(input));
    expect(batches.map((b) => b.numRows)).toEqual([10, 10, 5]);
    expect(batches[0]!.schema.fields.map((f) => f.name)).toEqual(["id", "name", "size"]);
    expect(readValue(batches[2]!.getChild("size")!, 4)).toBe(24);
    expect(api.scans).toHaveLength(3);
    expect(api.scans[1]!.ExclusiveStartKey).toEqual({ id: { S: "k9" } });
  });

  it("yields no batch for an empty table", async () => {
    const { input } = setup(0);
    expect(await collect(scanSegment(input))).toEqual([]);
  });

  it("yields row counts only for a zero-column read", async () => {
    const { input } = setup(15);
    const batches = await collect(scanSegment({ ...input, schema: new Schema([]) }));
    expect(batches.map((b) => [b.numRows, b.numCols])).toEqual([
      [10, 0],
      [5, 0],
    ]);
  });

  it("prefetches exactly one page ahead of the consumer", async () => {
    const { api, input } = setup(50);
    const iterator = scanSegment(input)[Symbol.asyncIterator]();
    await iterator.next();
    await new Promise((r) => setTimeout(r, 10));
    // Page 1 consumed, page 2 requested; page 3 is not requested until page 2 is taken.
    expect(api.scans).toHaveLength(2);
    await iterator.next();
    await new Promise((r) => setTimeout(r, 10));
    expect(api.scans).toHaveLength(3);
    expect(api.maxScansInFlight).toBe(1);
    await iterator.return(undefined);
  });

  it("aborts the prefetched request when the consumer stops", async () => {
    const { api, input } = setup(50);
    let abortedSignal: AbortSignal | undefined;
    api.scanGate = (call, signal) => {
      if (call === 1) abortedSignal = signal;
      return call === 1 ? new Promise((resolve) => signal?.addEventListener("abort", () => resolve())) : Promise.resolve();
    };
    for await (const batch of scanSegment(input)) {
      expect(batch.numRows).toBe(10);
      break;
    }
    expect(abortedSignal?.aborted).toBe(true);
  });

  it("stops with CANCELLED when the signal aborts", async () => {
    const controller = new AbortController();
    const { input } = setup(50, { signal: controller.signal });
    const seen: number[] = [];
    let error: unknown;
    try {
      for await (const batch of scanSegment(input)) {
        seen.push(batch.numRows);
        controller.abort();
      }
    } catch (e) {
      error = e;
    }
    expect(seen).toEqual([10]);
    expect(error).toBeInstanceOf(ConduitError);
    expect((error as ConduitError).code).toBe("CANCELLED");
  });

  it("translates a missing table", async () => {
    const { input } = setup(0, { table: "missing", errorContext: { table: "missing", region: "eu-west-1", endpoint: "http://localhost:8000", operation: "Scan" } });
    const error = await collect(scanSegment(input)).catch((e: unknown) => e as ConduitError);
    expect(error).toBeInstanceOf(ConduitError);
    expect((error as ConduitError).errorClass).toBe("TABLE_NOT_FOUND");
    expect((error as ConduitError).message).toContain("'missing'");
    expect((error as ConduitError).message).toContain("http://localhost:8000");
  });

  it("names the column of a value that does not fit", async () => {
    const { api, input } = setup(0);
    api.put("t1", { id: { S: "a" }, size: { N: "3000000000" } });
    const error = (await collect(scanSegment(input)).catch((e: unknown) => e)) as ConduitError;
    expect(error.errorClass).toBe("VALUE_OUT_OF_RANGE");
    expect(error.parameters.column).toBe("size");
  });
});
