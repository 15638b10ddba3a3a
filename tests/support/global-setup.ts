/**
 * Starts the real local databases the integration tests need, once per vitest run,
 * unless the caller (scripts/test) already started them and passed their endpoints.
 */
import type { TestProject } from "vitest/node";
import type {} from "./provided-context.js";
// @ts-expect-error plain JS module shared with the shell scripts
import { startDynamoDbLocal } from "../../scripts/local-dynamodb.mjs";

let stopDynamo: (() => Promise<void>) | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let endpoint = process.env.SPARK_CONDUIT_TEST_DYNAMODB_ENDPOINT;
  if (!endpoint) {
    const local = (await startDynamoDbLocal({})) as { endpoint: string; stop: () => Promise<void> };
    endpoint = local.endpoint;
    stopDynamo = local.stop;
  }
  project.provide("dynamodbEndpoint", endpoint);
  return async () => {
    await stopDynamo?.();
  };
}
