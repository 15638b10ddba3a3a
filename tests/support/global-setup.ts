/**
 * Starts the real local databases the integration tests need (DynamoDB Local and a
 * single-node Cassandra, in parallel), once per vitest run, unless the caller
 * (scripts/test) already started them and passed their connection info:
 * SPARK_CONDUIT_TEST_DYNAMODB_ENDPOINT and SPARK_CONDUIT_TEST_CASSANDRA (JSON).
 */
import type { TestProject } from "vitest/node";
import type { CassandraConnectionInfo } from "./provided-context.js";
// @ts-expect-error plain JS module shared with the shell scripts
import { startDynamoDbLocal } from "../../scripts/local-dynamodb.mjs";
// @ts-expect-error plain JS module shared with the shell scripts
import { startCassandra } from "../../scripts/local-cassandra.mjs";

type Stop = () => Promise<void>;

async function dynamoDb(stops: Stop[]): Promise<string> {
  const given = process.env.SPARK_CONDUIT_TEST_DYNAMODB_ENDPOINT;
  if (given) return given;
  const local = (await startDynamoDbLocal({})) as { endpoint: string; stop: Stop };
  stops.push(local.stop);
  return local.endpoint;
}

async function cassandra(stops: Stop[]): Promise<CassandraConnectionInfo> {
  const given = process.env.SPARK_CONDUIT_TEST_CASSANDRA;
  if (given) return JSON.parse(given) as CassandraConnectionInfo;
  const { stop, ...info } = (await startCassandra({})) as CassandraConnectionInfo & { stop: Stop };
  stops.push(stop);
  return info;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops: Stop[] = [];
  const teardown = async () => {
    await Promise.all(stops.map((stop) => stop()));
  };
  const [endpoint, cassandraInfo] = await Promise.allSettled([dynamoDb(stops), cassandra(stops)]);
  if (endpoint.status === "rejected" || cassandraInfo.status === "rejected") {
    await teardown();
    throw endpoint.status === "rejected" ? endpoint.reason : (cassandraInfo as PromiseRejectedResult).reason;
  }
  project.provide("dynamodbEndpoint", endpoint.value);
  project.provide("cassandra", cassandraInfo.value);
  return teardown;
}
