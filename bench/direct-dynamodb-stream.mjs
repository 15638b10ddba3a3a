#!/usr/bin/env node
// The streaming benchmark's DynamoDB side, with plain Node clients (no Spark, no service):
//
//   node bench/direct-dynamodb-stream.mjs prepare --endpoint URL --table T --events N [--concurrency C]
//     (re-)creates T with a NEW_AND_OLD_IMAGES stream and makes N changes with BatchWriteItem:
//     the benchmark's rows 0..N/2-1 are inserted, then written again with other values
//     (N/2 INSERT and N/2 MODIFY events, the latter with both images). Prints {"events", "write_seconds"}.
//   node bench/direct-dynamodb-stream.mjs read --endpoint URL --table T --events N
//     the direct ceiling: every shard of T's stream read from TRIM_HORIZON with GetRecords
//     (1,000 records per call), parents before children, shards whose parents are done read
//     at once, each open shard until 3 empty pages in a row at its tip, as the service does.
//     Fails unless it saw N records. Prints {"events", "seconds", "events_per_s", "cpu_us_per_event"}.
//   node bench/direct-dynamodb-stream.mjs paced --endpoint URL --table T --count K --interval-ms MS
//     K PutItems, one every MS ms, of {id: "lat-i", written_at: <epoch ms>} (the latency run).
import { BatchWriteItemCommand, CreateTableCommand, DeleteTableCommand, DescribeTableCommand, DynamoDBClient, PutItemCommand, waitUntilTableExists, waitUntilTableNotExists } from "@aws-sdk/client-dynamodb";
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand } from "@aws-sdk/client-dynamodb-streams";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { Agent } from "node:http";
import { parseArgs } from "node:util";
import { benchItem as toItem, benchRow } from "./rows.mjs";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    endpoint: { type: "string" },
    table: { type: "string" },
    events: { type: "string", default: "0" },
    concurrency: { type: "string", default: "32" },
    count: { type: "string", default: "50" },
    "interval-ms": { type: "string", default: "250" },
  },
});
const [command] = positionals;
const table = values.table;
const events = Number(values.events);
const config = {
  region: "us-east-1",
  endpoint: values.endpoint,
  credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) }),
};
const dynamodb = new DynamoDBClient(config);
const streams = new DynamoDBStreamsClient(config);
// As the service does (src/backends/dynamodb/client.ts): no logger middleware, whose filtering costs CPU per call.
dynamodb.middlewareStack.remove("loggerMiddleware");
streams.middlewareStack.remove("loggerMiddleware");

async function prepare() {
  try {
    await dynamodb.send(new DeleteTableCommand({ TableName: table }));
    await waitUntilTableNotExists({ client: dynamodb, maxWaitTime: 60 }, { TableName: table });
  } catch (error) {
    if (error?.name !== "ResourceNotFoundException") throw error;
  }
  await dynamodb.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    }),
  );
  await waitUntilTableExists({ client: dynamodb, maxWaitTime: 60 }, { TableName: table });
  const keys = Math.ceil(events / 2);
  // Row i has key i % keys, so the second pass over the keys makes MODIFY events.
  const row = (i) => ({ ...benchRow(i), id: benchRow(i % keys).id });
  const concurrency = Number(values.concurrency);
  // Writes rows [from, to) with `concurrency` BatchWriteItems in flight.
  async function pass(from, to) {
    let next = from;
    async function worker() {
      while (next < to) {
        const first = next;
        next = Math.min(to, first + 25);
        let pending = [];
        for (let i = first; i < next; i++) pending.push({ PutRequest: { Item: toItem(row(i)) } });
        while (pending.length > 0) {
          const out = await dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [table]: pending } }));
          pending = out.UnprocessedItems?.[table] ?? [];
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker));
  }
  const start = performance.now();
  // Inserts first, then the updates: every key's INSERT precedes its MODIFY.
  await pass(0, keys);
  await pass(keys, events);
  return { events, write_seconds: (performance.now() - start) / 1000 };
}

async function listShards(streamArn) {
  const shards = [];
  let startAfter;
  do {
    const out = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: startAfter }));
    shards.push(...(out.StreamDescription?.Shards ?? []));
    startAfter = out.StreamDescription?.LastEvaluatedShardId;
  } while (startAfter);
  return shards;
}

async function readShard(streamArn, shard) {
  let { ShardIterator: iterator } = await streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }));
  const closed = shard.SequenceNumberRange?.EndingSequenceNumber !== undefined;
  let count = 0;
  let empty = 0;
  while (iterator) {
    const out = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
    const records = out.Records ?? [];
    count += records.length;
    empty = records.length === 0 ? empty + 1 : 0;
    if (!closed && empty >= 3) break;
    iterator = out.NextShardIterator;
  }
  return count;
}

async function read() {
  const start = performance.now();
  const cpu = process.cpuUsage();
  const description = await dynamodb.send(new DescribeTableCommand({ TableName: table }));
  const streamArn = description.Table?.LatestStreamArn;
  if (!streamArn) throw new Error(`table ${table} has no stream`);
  const shards = await listShards(streamArn);
  const byId = new Map(shards.map((s) => [s.ShardId, s]));
  const done = new Set();
  let count = 0;
  // Lineage: a shard is read once its parent (if still listed) is done; ready shards at once.
  while (done.size < shards.length) {
    const ready = shards.filter((s) => !done.has(s.ShardId) && (!s.ParentShardId || !byId.has(s.ParentShardId) || done.has(s.ParentShardId)));
    if (ready.length === 0) throw new Error("shard lineage has a cycle");
    const counts = await Promise.all(ready.map((s) => readShard(streamArn, s)));
    for (const s of ready) done.add(s.ShardId);
    count += counts.reduce((a, b) => a + b, 0);
  }
  const seconds = (performance.now() - start) / 1000;
  const usage = process.cpuUsage(cpu);
  if (count !== events) throw new Error(`direct stream read saw ${count} records, expected ${events}`);
  return { events: count, seconds, events_per_s: count / seconds, cpu_us_per_event: Number(((usage.user + usage.system) / count).toFixed(1)), shards: shards.length };
}

async function paced() {
  const count = Number(values.count);
  const interval = Number(values["interval-ms"]);
  for (let i = 0; i < count; i++) {
    const started = Date.now();
    await dynamodb.send(new PutItemCommand({ TableName: table, Item: { id: { S: `lat-${i}` }, written_at: { N: String(Date.now()) } } }));
    await new Promise((r) => setTimeout(r, Math.max(0, interval - (Date.now() - started))));
  }
  return { writes: count };
}

const commands = { prepare, read, paced };
if (!commands[command] || !table || !values.endpoint) {
  process.stderr.write("usage: node bench/direct-dynamodb-stream.mjs prepare|read|paced --endpoint URL --table T [--events N] [--count K --interval-ms MS]\n");
  process.exit(2);
}
console.log(JSON.stringify(await commands[command]()));
dynamodb.destroy();
streams.destroy();
