#!/usr/bin/env node
// Counts a DynamoDB table's items with a consistent COUNT scan (no items cross the wire),
// so a fault test can poll how far a write got without the connector under test:
//
//   node tests/e2e/spark_jobs/dynamodb_count.mjs <endpoint> <table>     prints the count
import { DynamoDBClient, paginateScan } from "@aws-sdk/client-dynamodb";

const [endpoint, table] = process.argv.slice(2);
const client = new DynamoDBClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "dummy", secretAccessKey: "dummy" },
});
let count = 0;
for await (const page of paginateScan({ client }, { TableName: table, Select: "COUNT", ConsistentRead: true })) {
  count += page.Count ?? 0;
}
process.stdout.write(`${count}\n`);
