/** Every connector this service offers, by Spark format name. */
import type { Connector } from "../core/connector.js";
import type { Logger } from "../core/logger.js";
import { createCassandraConnector } from "./cassandra/connector.js";
import { createDynamoDbConnector } from "./dynamodb/connector.js";

export function createConnectors(logger: Logger): Map<string, Connector> {
  const connectors = [createDynamoDbConnector(logger.child({ format: "dynamodb" })), createCassandraConnector(logger.child({ format: "pycassandra" }))];
  return new Map(connectors.map((c) => [c.format, c]));
}
