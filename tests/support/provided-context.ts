/** Values the global setup hands to tests through `inject(...)`. */
import type {} from "vitest";

/** How to reach the local Cassandra (scripts/local-cassandra.mjs prints this as JSON). */
export interface CassandraConnectionInfo {
  host: string;
  /** The native (CQL) port; it takes plain and TLS clients alike. */
  port: number;
  /** The port for TLS clients: the same as `port`. */
  tlsPort: number;
  /** PEM file of the CA that signed the server's certificate (for 127.0.0.1 and localhost). */
  caCertFile: string;
  username: string;
  password: string;
  localDataCenter: string;
  version?: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
    cassandra: CassandraConnectionInfo;
  }
}
