#!/usr/bin/env node
// The direct ceiling: the benchmark's rows written with BatchWriteItem and read back with a
// parallel Scan by a plain Node client, same concurrency as the Spark path, no Spark, no
// service. Prints one JSON line: {"write_rows_per_s":..., "read_rows_per_s":...}.
//
//   node bench/direct-dynamodb.mjs --endpoint URL --table NAME --rows N --concurrency C --segments S --read-concurrency R
//
// Same concurrency as the Spark path: C BatchWriteItem requests in flight (Spark tasks x
// write_concurrency), and R segments scanned at once (Spark's task slots), each segment
// fetching its next page while the current one is processed, as the service does.
import { BatchWriteItemCommand, CreateTableCommand, DeleteTableCommand, DynamoDBClient, ScanCommand, waitUntilTableExists } from "@aws-sdk/client-dynamodb";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { Agent } from "node:http";
import { parseArgs } from "node:util";
import { benchItem as toItem, benchRow, measureDirect } from "./rows.mjs";

const { values } = parseArgs({
  options: {
    endpoint: { type: "string" },
    table: { type: "string", default: "bench_direct" },
    rows: { type: "string", default: "1000000" },
    concurrency: { type: "string", default: "32" },
    segments: { type: "string", default: "8" },
    "read-concurrency": { type: "string", default: "2" },
  },
});
const rows = Number(values.rows);
const concurrency = Number(values.concurrency);
const segments = Number(values.segments);
const readConcurrency = Number(values["read-concurrency"]);
const client = new DynamoDBClient({
  region: "us-east-1",
  endpoint: values.endpoint,
  credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: concurrency * 2 }) }),
});
// As the service does (src/backends/dynamodb/client.ts): the logger middleware filters
// every request and response for logs nobody writes. Without this the ceiling is not one.
client.middlewareStack.remove("loggerMiddleware");

async function writeAll() {
  let next = 0;
  async function worker() {
    for (;;) {
      const start = next;
      if (start >= rows) return;
      next = Math.min(rows, start + 25);
      let pending = [];
      for (let i = start; i < next; i++) pending.push({ PutRequest: { Item: toItem(benchRow(i)) } });
      let delay = 20;
      while (pending.length > 0) {
        const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [values.table]: pending } }));
        pending = out.UnprocessedItems?.[values.table] ?? [];
        if (pending.length > 0) {
          await new Promise((r) => setTimeout(r, Math.random() * delay));
          delay = Math.min(delay * 2, 2000);
        }
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function readAll() {
  let count = 0;
  let nextSegment = 0;
  const scan = (segment, key) =>
    client.send(new ScanCommand({ TableName: values.table, Segment: segment, TotalSegments: segments, ExclusiveStartKey: key }));
  async function worker() {
    while (nextSegment < segments) {
      const segment = nextSegment++;
      let page = scan(segment, undefined);
      while (page) {
        const out = await page;
        page = out.LastEvaluatedKey ? scan(segment, out.LastEvaluatedKey) : undefined;
        for (const item of out.Items ?? []) if (item.id) count++;
      }
    }
  }
  await Promise.all(Array.from({ length: readConcurrency }, worker));
  return count;
}

await client.send(new DeleteTableCommand({ TableName: values.table })).catch(() => undefined);
await client.send(
  new CreateTableCommand({
    TableName: values.table,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
  }),
);
await waitUntilTableExists({ client, maxWaitTime: 60 }, { TableName: values.table });

const figures = await measureDirect(rows, writeAll, readAll);
await client.send(new DeleteTableCommand({ TableName: values.table }));
console.log(JSON.stringify(figures));
client.destroy();
