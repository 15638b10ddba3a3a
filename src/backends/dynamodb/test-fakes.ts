/**
 * An in-memory DynamoDB (and DynamoDB Streams, below) for unit tests (not used by the service): enough of DescribeTable,
 * CreateTable, Scan and BatchWriteItem to exercise planning, reads and writes, with hooks
 * to return unprocessed items, fail, or hold requests open. It enforces the rules the
 * real service enforces that the writer must respect (no duplicate keys in one request,
 * at most 25 items).
 */
import type {
  AttributeValue,
  BatchWriteItemCommandInput,
  BatchWriteItemCommandOutput,
  CreateTableCommandInput,
  CreateTableCommandOutput,
  DescribeTableCommandOutput,
  ScanCommandInput,
  ScanCommandOutput,
  WriteRequest,
} from "@aws-sdk/client-dynamodb";
import type { DescribeStreamCommandInput, GetShardIteratorCommandInput, _Record } from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDbApi, StreamsApi } from "./client.js";
import type { Item, KeyAttributeType } from "./types.js";

export function sdkError(name: string, message = name, status = 400): Error {
  const error = new Error(message) as Error & { $metadata: { httpStatusCode: number } };
  error.name = name;
  error.$metadata = { httpStatusCode: status };
  return error;
}

const META = { $metadata: {} };

export interface FakeTable {
  name: string;
  hashKey: { name: string; type: KeyAttributeType };
  rangeKey?: { name: string; type: KeyAttributeType };
  items: Map<string, Item>;
  /** Statuses DescribeTable reports in turn; the last one sticks. */
  statuses: string[];
  /** The table's enabled stream (NEW_AND_OLD_IMAGES), if any. */
  streamArn?: string;
}

export function keyText(table: FakeTable, item: Record<string, AttributeValue>): string {
  const part = (name: string) => JSON.stringify(item[name], (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v));
  return table.rangeKey ? `${part(table.hashKey.name)}|${part(table.rangeKey.name)}` : part(table.hashKey.name);
}

function hash(text: string): number {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0;
  return Math.abs(h);
}

export interface BatchWriteCall {
  requests: WriteRequest[];
  /** Index into `events` when the call started and finished. */
  startedAt: number;
  finishedAt?: number;
}

export class FakeDynamoDb implements DynamoDbApi {
  readonly tables = new Map<string, FakeTable>();
  readonly scans: ScanCommandInput[] = [];
  readonly batchWrites: BatchWriteCall[] = [];
  readonly created: CreateTableCommandInput[] = [];
  private eventCounter = 0;
  inFlightWrites = 0;
  maxInFlightWrites = 0;
  scansInFlight = 0;
  maxScansInFlight = 0;
  destroyed = false;
  /** Items a Scan page holds at most (stands in for the 1 MB page limit). */
  defaultPageSize = 100;
  /** Returns the requests to leave unprocessed (default none). */
  unprocessed: (requests: WriteRequest[], call: number) => WriteRequest[] = () => [];
  /** Throws to fail a BatchWriteItem call before it applies anything. */
  failWrite: (call: number) => void = () => {};
  /** Key UnprocessedItems by the table's name even when the request named it by ARN. */
  unprocessedKeyedByName = false;
  /** Awaited before a BatchWriteItem call is answered (hold requests open). */
  writeGate: (call: number) => Promise<void> = async () => {};
  /** Awaited before a Scan call is answered. */
  scanGate: (call: number, signal?: AbortSignal) => Promise<void> = async () => {};

  addTable(name: string, hashKey: FakeTable["hashKey"], rangeKey?: FakeTable["rangeKey"], statuses = ["ACTIVE"]): FakeTable {
    const table: FakeTable = { name, hashKey, rangeKey, items: new Map(), statuses: [...statuses] };
    this.tables.set(name, table);
    return table;
  }

  put(tableName: string, item: Item): void {
    const table = this.tables.get(tableName)!;
    table.items.set(keyText(table, item), item);
  }

  private table(name: string | undefined): FakeTable {
    // A table ARN (arn:aws:dynamodb:<region>:<account>:table/<name>) names the table too.
    const resolved = name?.startsWith("arn:") && name.includes(":table/") ? name.slice(name.indexOf(":table/") + 7) : name;
    const table = resolved === undefined ? undefined : this.tables.get(resolved);
    if (!table) throw sdkError("ResourceNotFoundException", "Cannot do operations on a non-existent table");
    return table;
  }

  async describeTable(tableName: string): Promise<DescribeTableCommandOutput> {
    const table = this.table(tableName);
    const status = table.statuses.length > 1 ? table.statuses.shift()! : table.statuses[0]!;
    const keys = table.rangeKey ? [table.hashKey, table.rangeKey] : [table.hashKey];
    return {
      ...META,
      Table: {
        TableName: table.name,
        TableStatus: status as "ACTIVE",
        KeySchema: keys.map((k, i) => ({ AttributeName: k.name, KeyType: i === 0 ? "HASH" : "RANGE" })),
        AttributeDefinitions: keys.map((k) => ({ AttributeName: k.name, AttributeType: k.type })),
        ...(table.streamArn ? { LatestStreamArn: table.streamArn, StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" as const } } : {}),
      },
    };
  }

  async createTable(input: CreateTableCommandInput): Promise<CreateTableCommandOutput> {
    if (this.tables.has(input.TableName!)) throw sdkError("ResourceInUseException", "Table already exists");
    this.created.push(input);
    const type = (name: string) => input.AttributeDefinitions!.find((a) => a.AttributeName === name)!.AttributeType as KeyAttributeType;
    const hashName = input.KeySchema!.find((k) => k.KeyType === "HASH")!.AttributeName!;
    const rangeName = input.KeySchema!.find((k) => k.KeyType === "RANGE")?.AttributeName;
    this.addTable(input.TableName!, { name: hashName, type: type(hashName) }, rangeName ? { name: rangeName, type: type(rangeName) } : undefined, ["CREATING", "CREATING", "ACTIVE"]);
    return META;
  }

  async scan(input: ScanCommandInput, signal?: AbortSignal): Promise<ScanCommandOutput> {
    const call = this.scans.length;
    this.scans.push(input);
    this.scansInFlight++;
    this.maxScansInFlight = Math.max(this.maxScansInFlight, this.scansInFlight);
    try {
      await this.scanGate(call, signal);
      if (signal?.aborted) throw Object.assign(new Error("aborted"), { name: "AbortError" });
      const table = this.table(input.TableName);
      let entries = [...table.items.entries()];
      if (input.TotalSegments !== undefined) entries = entries.filter(([key]) => hash(key) % input.TotalSegments! === input.Segment);
      let start = 0;
      if (input.ExclusiveStartKey) start = entries.findIndex(([key]) => key === keyText(table, input.ExclusiveStartKey!)) + 1;
      const limit = Math.min(input.Limit ?? Infinity, this.defaultPageSize);
      const page = entries.slice(start, start + limit);
      const more = start + limit < entries.length;
      const last = page.at(-1)?.[1];
      const lastKey = more && last ? this.keyOf(table, last) : undefined;
      if (input.Select === "COUNT") return { ...META, Count: page.length, ScannedCount: page.length, LastEvaluatedKey: lastKey };
      let items = page.map(([, item]) => item);
      if (input.ProjectionExpression) {
        const names = input.ProjectionExpression.split(",").map((p) => {
          const token = p.trim();
          return token.startsWith("#") ? input.ExpressionAttributeNames![token]! : token;
        });
        items = items.map((item) => Object.fromEntries(names.filter((n) => item[n] !== undefined).map((n) => [n, item[n]!])));
      }
      return { ...META, Items: items, Count: items.length, ScannedCount: items.length, LastEvaluatedKey: lastKey };
    } finally {
      this.scansInFlight--;
    }
  }

  private keyOf(table: FakeTable, item: Item): Item {
    const key: Item = { [table.hashKey.name]: item[table.hashKey.name]! };
    if (table.rangeKey) key[table.rangeKey.name] = item[table.rangeKey.name]!;
    return key;
  }

  async batchWriteItem(input: BatchWriteItemCommandInput, signal?: AbortSignal): Promise<BatchWriteItemCommandOutput> {
    const call = this.batchWrites.length;
    const entry = Object.entries(input.RequestItems ?? {})[0];
    const record: BatchWriteCall = { requests: entry?.[1] ?? [], startedAt: this.eventCounter++ };
    this.batchWrites.push(record);
    this.inFlightWrites++;
    this.maxInFlightWrites = Math.max(this.maxInFlightWrites, this.inFlightWrites);
    try {
      await this.writeGate(call);
      if (signal?.aborted) throw Object.assign(new Error("aborted"), { name: "AbortError" });
      this.failWrite(call);
      const [tableName, requests] = entry!;
      const table = this.table(tableName);
      if (requests.length === 0 || requests.length > 25) throw sdkError("ValidationException", "Too many items requested for the BatchWriteItem call");
      const keys = requests.map((r) => keyText(table, r.PutRequest ? r.PutRequest.Item! : r.DeleteRequest!.Key!));
      if (new Set(keys).size !== keys.length) throw sdkError("ValidationException", "Provided list of item keys contains duplicates");
      const left = new Set(this.unprocessed(requests, call));
      requests.forEach((r, i) => {
        if (left.has(r)) return;
        if (r.PutRequest) table.items.set(keys[i]!, r.PutRequest.Item!);
        else table.items.delete(keys[i]!);
      });
      return { ...META, UnprocessedItems: left.size > 0 ? { [this.unprocessedKeyedByName ? table.name : tableName]: [...left] } : {} };
    } finally {
      this.inFlightWrites--;
      record.finishedAt = this.eventCounter++;
    }
  }

  destroy(): void {
    this.destroyed = true;
  }
}

/** A clock whose sleeps return at once and advance time; records every sleep. */

/** The stream ARN DynamoDB would give table `table` (the label is fixed). */
export function fakeStreamArn(table: string, label = "2026-01-01T00:00:00.000"): string {
  return `arn:aws:dynamodb:us-east-1:000000000000:table/${table}/stream/${label}`;
}

/** Sequence numbers as DynamoDB writes them: 21 digits. */
export const fakeSeq = (n: number): string => String(n).padStart(21, "0");

export interface FakeShard {
  id: string;
  parent?: string;
  /** Sequence numbers of the records still in the stream. */
  records: number[];
  closed: boolean;
  /** Records up to this sequence number were trimmed (reading after an older one fails). */
  trimmedThrough?: number;
}

/** The default record `n` of a shard: an INSERT of item {pk: "k<n>"}, created at the epoch. */
export function defaultFakeRecord(_shard: string, n: number): _Record {
  return {
    eventID: `e${n}`,
    eventName: "INSERT",
    dynamodb: { SequenceNumber: fakeSeq(n), Keys: { pk: { S: `k${n}` } }, NewImage: { pk: { S: `k${n}` } }, ApproximateCreationDateTime: new Date(0) },
  };
}

/**
 * An in-memory DynamoDB Streams: shards with numbered records, DescribeStream paged two
 * shards at a time, iterators as opaque tokens, and hooks to throttle or expire calls.
 */
export class FakeStreams implements StreamsApi {
  shards: FakeShard[] = [];
  /** AWS answers ShardFilter CHILD_SHARDS with the children only; DynamoDB Local (false) ignores it. */
  honoursShardFilter = false;
  describeCalls: DescribeStreamCommandInput[] = [];
  iteratorCalls: GetShardIteratorCommandInput[] = [];
  getRecordsCalls = 0;
  /** The shard of each GetRecords call, in order. */
  getRecordsShards: string[] = [];
  /** Called before each GetRecords; throw to fail it. */
  beforeGetRecords: (call: number) => void = () => {};
  /** Builds record `n` of a shard (its SequenceNumber must be fakeSeq(n)). */
  makeRecord: (shard: string, n: number) => _Record = defaultFakeRecord;
  /** A closed shard's last records still come with a next iterator; only the empty page after them has none (as DynamoDB may answer). */
  endsWithEmptyPage = false;
  private iterators = new Map<string, { shard: string; after: number }>();
  private nextIterator = 0;

  constructor(readonly streamArn = fakeStreamArn("users")) {}

  async listStreams() {
    return { $metadata: {}, Streams: [{ StreamArn: this.streamArn, TableName: "users" }] };
  }

  async describeStream(input: DescribeStreamCommandInput) {
    this.describeCalls.push(input);
    const filter = this.honoursShardFilter ? input.ShardFilter : undefined;
    const listed = filter ? this.shards.filter((s) => s.parent === filter.ShardId) : this.shards;
    const from = input.ExclusiveStartShardId ? listed.findIndex((s) => s.id === input.ExclusiveStartShardId) + 1 : 0;
    const page = listed.slice(from, from + 2);
    return {
      $metadata: {},
      StreamDescription: {
        StreamArn: input.StreamArn,
        Shards: page.map((s) => ({
          ShardId: s.id,
          ParentShardId: s.parent,
          SequenceNumberRange: { StartingSequenceNumber: fakeSeq(s.records[0] ?? 0), ...(s.closed ? { EndingSequenceNumber: fakeSeq(s.records.at(-1) ?? 0) } : {}) },
        })),
        LastEvaluatedShardId: from + 2 < listed.length ? page.at(-1)!.id : undefined,
      },
    };
  }

  async getShardIterator(input: GetShardIteratorCommandInput) {
    this.iteratorCalls.push(input);
    const shard = this.shards.find((s) => s.id === input.ShardId);
    if (!shard) throw sdkError("ResourceNotFoundException", "Shard does not exist");
    let after = -1;
    if (input.ShardIteratorType === "AFTER_SEQUENCE_NUMBER") {
      after = Number(input.SequenceNumber);
      if (shard.trimmedThrough !== undefined && after < shard.trimmedThrough) throw sdkError("TrimmedDataAccessException", "trimmed");
    }
    const token = `it-${this.nextIterator++}`;
    this.iterators.set(token, { shard: shard.id, after });
    return { $metadata: {}, ShardIterator: token };
  }

  async getRecords(iterator: string, limit: number) {
    this.beforeGetRecords(this.getRecordsCalls++);
    const state = this.iterators.get(iterator);
    if (!state) throw sdkError("ExpiredIteratorException", "Iterator expired");
    this.getRecordsShards.push(state.shard);
    const shard = this.shards.find((s) => s.id === state.shard)!;
    const page = shard.records.filter((n) => n > state.after).slice(0, limit);
    const last = page.at(-1) ?? state.after;
    const atEnd = shard.closed && !shard.records.some((n) => n > last) && (!this.endsWithEmptyPage || page.length === 0);
    const records = page.map((n) => this.makeRecord(shard.id, n));
    let next: string | undefined;
    if (!atEnd) {
      next = `it-${this.nextIterator++}`;
      this.iterators.set(next, { shard: shard.id, after: last });
    }
    return { $metadata: {}, Records: records, NextShardIterator: next };
  }

  /** Forgets every iterator, as 15 minutes would. */
  expireIterators(): void {
    this.iterators.clear();
  }

  destroy(): void {}
}
