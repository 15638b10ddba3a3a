/**
 * A driver client of the local Cassandra (never the connector under test) and a keyspace of
 * the test file's own, made before its tests and dropped after them.
 */
import cassandra from "cassandra-driver";
import type { CassandraConnectionInfo } from "./provided-context.js";

export async function connectWithKeyspace(info: CassandraConnectionInfo, keyspace: string): Promise<cassandra.Client> {
  const client = new cassandra.Client({
    contactPoints: [`${info.host}:${info.port}`],
    localDataCenter: info.localDataCenter,
    credentials: { username: info.username, password: info.password },
    encoding: { map: Map, set: Set, useBigIntAsLong: true, useBigIntAsVarint: true },
  });
  await client.connect();
  await client.execute(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
  return client;
}

export async function dropKeyspace(client: cassandra.Client | undefined, keyspace: string): Promise<void> {
  if (!client) return;
  await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
  await client.shutdown();
}
