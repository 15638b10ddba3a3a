#!/usr/bin/env node
// Creates (or re-creates, empty) a DynamoDB table with a stream of view type
// NEW_AND_OLD_IMAGES, for examples/streaming_quickstart.py. The connector reads and writes
// items but runs no stream DDL, so the quickstart makes its table here, as a user would
// with the AWS CLI or console.
//
//   node examples/create-stream-table.mjs http://127.0.0.1:8000 users_changes id
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient, waitUntilTableExists, waitUntilTableNotExists } from "@aws-sdk/client-dynamodb";

const [endpoint, table, hashKey = "id"] = process.argv.slice(2);
if (!endpoint || !table) {
  process.stderr.write("usage: node examples/create-stream-table.mjs ENDPOINT TABLE [HASH_KEY]\n");
  process.exit(2);
}
const client = new DynamoDBClient({ endpoint, region: "us-east-1", credentials: { accessKeyId: "dummy", secretAccessKey: "dummy" } });
try {
  await client.send(new DeleteTableCommand({ TableName: table }));
  await waitUntilTableNotExists({ client, maxWaitTime: 30 }, { TableName: table });
} catch (error) {
  if (error?.name !== "ResourceNotFoundException") throw error;
}
await client.send(
  new CreateTableCommand({
    TableName: table,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: hashKey, AttributeType: "S" }],
    KeySchema: [{ AttributeName: hashKey, KeyType: "HASH" }],
    StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
  }),
);
await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: table });
client.destroy();
