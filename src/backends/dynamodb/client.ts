/**
 * DynamoDB clients. The rest of the backend talks to `DynamoDbApi`, a four-call slice of
 * the SDK, so unit tests can substitute a fake without mocking the SDK's command classes.
 * Clients are pooled per (region, endpoint, credentials, socket limit): building one costs
 * a credential resolution and fresh TLS connections, and Spark sends many tasks with the
 * same options. Credentials only enter the pool key as a hash.
 */
import { createHash } from "node:crypto";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ScanCommand,
  type BatchWriteItemCommandInput,
  type BatchWriteItemCommandOutput,
  type CreateTableCommandInput,
  type CreateTableCommandOutput,
  type DescribeTableCommandOutput,
  type ScanCommandInput,
  type ScanCommandOutput,
} from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListStreamsCommand,
  type DescribeStreamCommandInput,
  type DescribeStreamCommandOutput,
  type GetRecordsCommandOutput,
  type GetShardIteratorCommandInput,
  type GetShardIteratorCommandOutput,
  type ListStreamsCommandInput,
  type ListStreamsCommandOutput,
} from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDbOptions } from "./options.js";

/** The calls this backend makes; `DynamoDBClient` is adapted to it, tests fake it. */
export interface DynamoDbApi {
  describeTable(tableName: string, signal?: AbortSignal): Promise<DescribeTableCommandOutput>;
  createTable(input: CreateTableCommandInput, signal?: AbortSignal): Promise<CreateTableCommandOutput>;
  scan(input: ScanCommandInput, signal?: AbortSignal): Promise<ScanCommandOutput>;
  batchWriteItem(input: BatchWriteItemCommandInput, signal?: AbortSignal): Promise<BatchWriteItemCommandOutput>;
  /** Closes pooled sockets. */
  destroy(): void;
}

export interface ClientConfig {
  region: string;
  endpoint: string | undefined;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  /** Upper bound of concurrent HTTP connections; at least the write concurrency. */
  maxSockets: number;
}

/** Enough sockets for a read task's prefetch and a truncate's parallel scan, and never fewer than a write task's requests. */
const MIN_SOCKETS = 32;

export function clientConfigFromOptions(options: DynamoDbOptions): ClientConfig {
  const credentials =
    options.aws_access_key_id !== undefined && options.aws_secret_access_key !== undefined
      ? {
          accessKeyId: options.aws_access_key_id,
          secretAccessKey: options.aws_secret_access_key,
          ...(options.aws_session_token !== undefined ? { sessionToken: options.aws_session_token } : {}),
        }
      : undefined;
  return {
    region: options.aws_region,
    endpoint: options.endpoint_url,
    credentials,
    maxSockets: Math.max(MIN_SOCKETS, options.write_concurrency),
  };
}

/** Pool key; the credentials are hashed so no secret is kept in a map key or reaches a log. */
export function clientKey(config: ClientConfig): string {
  const creds = config.credentials
    ? createHash("sha256").update(`${config.credentials.accessKeyId}\0${config.credentials.secretAccessKey}\0${config.credentials.sessionToken ?? ""}`).digest("hex")
    : "default-chain";
  return `${config.region}|${config.endpoint ?? ""}|${creds}|${config.maxSockets}`;
}

/** Where requests go, for error messages (never includes credentials). */
export function describeTarget(config: Pick<ClientConfig, "region" | "endpoint">): string {
  return config.endpoint ? `endpoint ${config.endpoint} (region ${config.region})` : `region ${config.region}`;
}

/** The SDK settings both clients share: keep-alive sockets, timeouts, the SDK's own retries. */
function sdkClientSettings(config: ClientConfig) {
  const agentOptions = { keepAlive: true, maxSockets: config.maxSockets };
  return {
    region: config.region,
    ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
    ...(config.credentials !== undefined ? { credentials: config.credentials } : {}),
    // The SDK retries throttling and 5xx itself; the writer adds its own longer retry of
    // unprocessed items on top, bounded by max_retry_seconds.
    maxAttempts: 8,
    requestHandler: {
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
    },
  };
}

/** Builds a real SDK client with keep-alive sockets and wraps it as a DynamoDbApi. */
export function createSdkApi(config: ClientConfig): DynamoDbApi {
  const client = new DynamoDBClient(sdkClientSettings(config));
  // The SDK's logger middleware copies every request and response through a
  // sensitive-data filter even when nothing logs (about 8% of the service's CPU on a
  // write, more on 1 MB scan pages). The service logs its own summaries instead.
  client.middlewareStack.remove("loggerMiddleware");
  return {
    describeTable: (tableName, signal) => client.send(new DescribeTableCommand({ TableName: tableName }), { abortSignal: signal }),
    createTable: (input, signal) => client.send(new CreateTableCommand(input), { abortSignal: signal }),
    scan: (input, signal) => client.send(new ScanCommand(input), { abortSignal: signal }),
    batchWriteItem: (input, signal) => client.send(new BatchWriteItemCommand(input), { abortSignal: signal }),
    destroy: () => client.destroy(),
  };
}

/**
 * The DynamoDB Streams calls the stream reader makes (a separate SDK client and endpoint
 * prefix, `streams.dynamodb`); `DynamoDBStreamsClient` is adapted to it, tests fake it.
 */
export interface StreamsApi {
  listStreams(input: ListStreamsCommandInput, signal?: AbortSignal): Promise<ListStreamsCommandOutput>;
  describeStream(input: DescribeStreamCommandInput, signal?: AbortSignal): Promise<DescribeStreamCommandOutput>;
  getShardIterator(input: GetShardIteratorCommandInput, signal?: AbortSignal): Promise<GetShardIteratorCommandOutput>;
  getRecords(shardIterator: string, limit: number, signal?: AbortSignal): Promise<GetRecordsCommandOutput>;
  /** Closes pooled sockets. */
  destroy(): void;
}

/** Builds a real Streams client (pool it with `clientKey` like the table client) and wraps it as a StreamsApi. */
export function createSdkStreamsApi(config: ClientConfig): StreamsApi {
  const client = new DynamoDBStreamsClient(sdkClientSettings(config));
  // Same reason as for the table client: GetRecords pages are up to 1 MB.
  client.middlewareStack.remove("loggerMiddleware");
  return streamsApiOf(client);
}

/** A Streams SDK client as a StreamsApi (tests adapt a client of their own settings too). */
export function streamsApiOf(client: DynamoDBStreamsClient): StreamsApi {
  return {
    listStreams: (input, signal) => client.send(new ListStreamsCommand(input), { abortSignal: signal }),
    describeStream: (input, signal) => client.send(new DescribeStreamCommand(input), { abortSignal: signal }),
    getShardIterator: (input, signal) => client.send(new GetShardIteratorCommand(input), { abortSignal: signal }),
    getRecords: (shardIterator, limit, signal) => client.send(new GetRecordsCommand({ ShardIterator: shardIterator, Limit: limit }), { abortSignal: signal }),
    destroy: () => client.destroy(),
  };
}
