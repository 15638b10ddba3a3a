#!/usr/bin/env node
// Test-only access to DynamoDB Local, independent of the connector under test:
//
//   node tests/e2e/dynamodb_helper.mjs <endpoint> create '{"table":"t","hash":["id","S"],"range":["ts","N"]}'
//   node tests/e2e/dynamodb_helper.mjs <endpoint> drop   '{"table":"t"}'
//   node tests/e2e/dynamodb_helper.mjs <endpoint> put    '{"table":"t","items":[{"id":{"S":"a"}}]}'
//   node tests/e2e/dynamodb_helper.mjs <endpoint> scan   '{"table":"t"}'     prints the raw items as JSON
//   node tests/e2e/dynamodb_helper.mjs <endpoint> tables                       prints the table names
//
// Items are DynamoDB AttributeValue maps (no marshalling here, so tests see the stored types).
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  ResourceNotFoundException,
  paginateScan,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";

const [endpoint, command, json] = process.argv.slice(2);
const args = json ? JSON.parse(json) : {};
const client = new DynamoDBClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "dummy", secretAccessKey: "dummy" },
});

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
