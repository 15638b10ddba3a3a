#!/usr/bin/env node
// Test-only access to DynamoDB Local, independent of the connector under test:
//
//   node tests/e2e/dynamodb_helper.mjs <endpoint> create '{"table":"t","hash":["id","S"],"range":["ts","N"]}'
//   node tests/e2e/dynamodb_helper.mjs <endpoint> drop   '{"table":"t"}'
//   node tests/e2e/dynamodb_helper.mjs <endpoint> put    '{"table":"t","items":[{"id":{"S":"a"}}]}'
//   node tests/e2e/dynamodb_helper.mjs <endpoint> scan   '{"table":"t"}'     prints the raw items as JSON
//   node tests/e2e/dynamodb_helper.mjs <endpoint> tables                       prints the table names
//
// Streams (the change stream tests):
//   create '{"table":"t","hash":["id","S"],"stream":"NEW_AND_OLD_IMAGES"}'   a table with a stream of that view type
//   stream '{"table":"t","view":"NEW_IMAGE"}'            enables a stream ('{"table":"t","view":null}' disables it)
//   update '{"table":"t","updates":[{"key":{"id":{"S":"a"}},"set":{"n":{"N":"2"}}}]}'   UpdateItem each (a MODIFY, or INSERT if new)
//   delete '{"table":"t","keys":[{"id":{"S":"a"}}]}'    DeleteItem per key (one REMOVE each)
//   records '{"table":"t"}'   every record of every stream of the table, straight from GetRecords, as JSON
//                             [{eventID, eventName, shardId, sequenceNumber, keys}] in shard order
//
// Items are DynamoDB AttributeValue maps (no marshalling here, so tests see the stored types).
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  DeleteItemCommand,
  DescribeTableCommand,
  ListTablesCommand,
  ResourceNotFoundException,
  UpdateItemCommand,
  UpdateTableCommand,
  paginateScan,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListStreamsCommand,
} from "@aws-sdk/client-dynamodb-streams";

const [endpoint, command, json] = process.argv.slice(2);
const args = json ? JSON.parse(json) : {};
const config = { endpoint, region: "us-east-1", credentials: { accessKeyId: "dummy", secretAccessKey: "dummy" } };
const client = new DynamoDBClient(config);
const streams = new DynamoDBStreamsClient(config);

/** Every record of one stream: each shard from TRIM_HORIZON until it is closed or has nothing more now. */
async function streamRecords(streamArn) {
  const shards = [];
  let start;
  do {
    const out = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: start }));
    shards.push(...(out.StreamDescription?.Shards ?? []));
    start = out.StreamDescription?.LastEvaluatedShardId;
  } while (start);
  const records = [];
  for (const shard of shards) {
    const first = await streams.send(
      new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }),
    );
    let iterator = first.ShardIterator;
    // An open shard always returns a next iterator: stop at the first empty page.
    while (iterator) {
      const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
      for (const r of page.Records ?? []) {
        records.push({
          eventID: r.eventID,
          eventName: r.eventName,
          shardId: shard.ShardId,
          sequenceNumber: r.dynamodb?.SequenceNumber,
          keys: r.dynamodb?.Keys,
        });
      }
      if ((page.Records ?? []).length === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return records;
}

async function main() {
  switch (command) {
    case "create": {
      const keys = [args.hash, args.range].filter(Boolean);
      await client.send(
        new CreateTableCommand({
          TableName: args.table,
          BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: keys.map(([name, type]) => ({ AttributeName: name, AttributeType: type })),
          KeySchema: keys.map(([name], i) => ({ AttributeName: name, KeyType: i === 0 ? "HASH" : "RANGE" })),
          ...(args.stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: args.stream } } : {}),
        }),
      );
      await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: args.table });
      return;
    }
    case "drop":
      try {
        await client.send(new DeleteTableCommand({ TableName: args.table }));
      } catch (error) {
        if (!(error instanceof ResourceNotFoundException)) throw error;
      }
      return;
    case "put":
      for (let i = 0; i < args.items.length; i += 25) {
        const requests = args.items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
        let pending = { [args.table]: requests };
        while (pending && Object.keys(pending).length > 0) {
          const out = await client.send(new BatchWriteItemCommand({ RequestItems: pending }));
          pending = out.UnprocessedItems;
        }
      }
      return;
    case "scan": {
      const items = [];
      for await (const page of paginateScan({ client }, { TableName: args.table, ConsistentRead: true })) {
        items.push(...(page.Items ?? []));
      }
      process.stdout.write(JSON.stringify(items));
      return;
    }
    case "stream": {
      const spec = args.view ? { StreamEnabled: true, StreamViewType: args.view } : { StreamEnabled: false };
      await client.send(new UpdateTableCommand({ TableName: args.table, StreamSpecification: spec }));
      return;
    }
    case "update":
      for (const { key, set } of args.updates) {
        const names = Object.keys(set);
        await client.send(
          new UpdateItemCommand({
            TableName: args.table,
            Key: key,
            UpdateExpression: "SET " + names.map((_, i) => `#a${i} = :v${i}`).join(", "),
            ExpressionAttributeNames: Object.fromEntries(names.map((name, i) => [`#a${i}`, name])),
            ExpressionAttributeValues: Object.fromEntries(names.map((name, i) => [`:v${i}`, set[name]])),
          }),
        );
      }
      return;
    case "delete":
      for (const Key of args.keys) await client.send(new DeleteItemCommand({ TableName: args.table, Key }));
      return;
    case "records": {
      // Every stream the table has had (a re-enabled stream is a new ARN), oldest first.
      const listed = await streams.send(new ListStreamsCommand({ TableName: args.table }));
      const arns = (listed.Streams ?? []).map((s) => s.StreamArn);
      const current = (await client.send(new DescribeTableCommand({ TableName: args.table }))).Table?.LatestStreamArn;
      if (current && !arns.includes(current)) arns.push(current);
      const records = [];
      for (const arn of arns) records.push(...(await streamRecords(arn)));
      process.stdout.write(JSON.stringify(records));
      return;
    }
    case "tables": {
      const out = await client.send(new ListTablesCommand({}));
      process.stdout.write(JSON.stringify(out.TableNames ?? []));
      return;
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
}

main().catch((error) => {
  process.stderr.write(`dynamodb_helper ${command}: ${error.name}: ${error.message}\n`);
  process.exit(1);
});
