/**
 * Fuzzing the service's input: mutated Arrow IPC (schemas and record batches) and mutated
 * protobuf request bytes, sent to a real gRPC server on port 0 through a grpc-js client
 * with identity serializers, so the bytes reach the server exactly as mutated.
 *
 * The connector is a fake whose write reads every value of every batch with the column
 * reader the real writers use (decoding happens before any database call, so a database
 * would add nothing here but time). Every call must end with OK or a classified error
 * (a status with ErrorInfo, never INTERNAL: undecodable protobuf is REQUEST_MALFORMED),
 * never a stack, never a hang; the server answers a valid call afterwards, and memory
 * stays bounded: a declared length of 2 GB must not allocate 2 GB.
 *
 * The seed is printed; rerun a failure with FUZZ_SEED=<seed>.
 */
import * as grpc from "@grpc/grpc-js";
import { type RecordBatch, Field, Int32, Schema, Utf8 } from "apache-arrow";
import protobuf from "protobufjs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BatchBuilder } from "../../src/arrow/batch-builder.js";
import { readColumn } from "../../src/arrow/column-reader.js";
import { decodeBatches, encodeBatch, encodeSchema } from "../../src/arrow/ipc.js";
import { rows as fixtureRows, schema as fixtureSchema } from "../../src/arrow/test-fixtures.js";
import type { Connector, WriteInput } from "../../src/core/connector.js";
import { decodeDescriptor, encodeDescriptor } from "../../src/core/descriptor.js";
import { silentLogger } from "../../src/core/logger.js";
import { OptionRegistry } from "../../src/options/registry.js";
import { findProtoDir } from "../../src/transport/proto.js";
import { createConnectors } from "../../src/backends/index.js";
import { startServer, type RunningServer } from "../../src/transport/server.js";
import { seededRandom } from "../support/seeded-random.js";

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const MUTATIONS_PER_TARGET = Number(process.env.FUZZ_MUTATIONS ?? 600);
const CALL_DEADLINE_MS = 15_000;
const IN_FLIGHT = 8;

// --- seeded PRNG -----------------------------------------------------------------------

function prng(seed: number) {
  const next = seededRandom(seed);
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
  };
}
type Rng = ReturnType<typeof prng>;

// --- mutators --------------------------------------------------------------------------

/** Lengths that must be refused without being allocated. */
const HUGE = [2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40, 2 ** 53, -1, -(2 ** 31)];

function writeInt64(bytes: Uint8Array, at: number, value: number) {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setBigInt64(at, BigInt(value), true);
}

/** Positions of 8-aligned little-endian int64 words whose value lies in [1, max]: row counts, buffer offsets and lengths, body lengths. */
function lengthWords(bytes: Uint8Array, max: number): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found: number[] = [];
  for (let at = 0; at + 8 <= bytes.length; at += 8) {
    const value = view.getBigInt64(at, true);
    if (value >= 1n && value <= BigInt(max)) found.push(at);
  }
  return found;
}

type Mutator = (rng: Rng, input: Uint8Array) => Uint8Array;

const mutators: Record<string, Mutator> = {
  bitFlips(rng, input) {
    const out = Uint8Array.from(input);
    for (let n = 1 + rng.int(8); n > 0 && out.length; n--) out[rng.int(out.length)]! ^= 1 << rng.int(8);
    return out;
  },
  randomBytes(rng, input) {
    const out = Uint8Array.from(input);
    for (let n = 1 + rng.int(16); n > 0 && out.length; n--) out[rng.int(out.length)] = rng.int(256);
    return out;
  },
  truncate(rng, input) {
    return input.slice(0, rng.int(input.length));
  },
  /** A huge value in a word that held a length (the targeted "declared length" corruption). */
  declaredLength(rng, input) {
    const out = Uint8Array.from(input);
    const words = lengthWords(out, Math.max(input.length, 1));
    if (words.length === 0) return mutators.bitFlips!(rng, input);
    writeInt64(out, rng.pick(words), rng.pick(HUGE));
    return out;
  },
  /** Any aligned 32-bit word: the IPC metadata length prefix, flatbuffer offsets and vtables. */
  int32Field(rng, input) {
    const out = Uint8Array.from(input);
    if (out.length < 4) return out;
    const at = rng.int(out.length >> 2) << 2;
    new DataView(out.buffer).setInt32(at, rng.pick([0, 1, -1, 0x7fffffff, -0x80000000, 0x10000, rng.int(2 ** 31)]), true);
    return out;
  },
  garbage(rng, input) {
    const out = new Uint8Array(rng.int(Math.max(64, input.length * 2)));
    for (let i = 0; i < out.length; i++) out[i] = rng.int(256);
    return out;
  },
  splice(rng, input) {
    const at = rng.int(input.length + 1);
    const inserted = new Uint8Array(1 + rng.int(32)).map(() => rng.int(256));
    return Uint8Array.from([...input.subarray(0, at), ...inserted, ...input.subarray(at)]);
  },
  repeatChunk(rng, input) {
    const from = rng.int(input.length);
    const to = Math.min(input.length, from + 1 + rng.int(64));
    return Uint8Array.from([...input.subarray(0, to), ...input.subarray(from, to), ...input.subarray(to)]);
  },
};
const mutatorNames = Object.keys(mutators);

function mutate(rng: Rng, input: Uint8Array): { name: string; bytes: Uint8Array } {
  const name = rng.pick(mutatorNames);
  let bytes = mutators[name]!(rng, input);
  // Sometimes stack a second mutation.
  if (rng.next() < 0.2) bytes = mutators[rng.pick(mutatorNames)]!(rng, bytes);
  return { name, bytes };
}

// --- valid inputs ----------------------------------------------------------------------

const smallSchema = new Schema([new Field("id", new Int32(), false), new Field("name", new Utf8(), true)]);

function batch(schema: Schema, rows: unknown[][]): RecordBatch {
  const builder = new BatchBuilder(schema);
  for (const row of rows) builder.appendRow(row as never);
  return builder.flush();
}

const schemas = [encodeSchema(smallSchema), encodeSchema(fixtureSchema)];
const batches = [
  { schema: smallSchema, bytes: encodeBatch(batch(smallSchema, [[1, "a"], [2, null], [3, "ccc"]])) },
  { schema: fixtureSchema, bytes: encodeBatch(batch(fixtureSchema, fixtureRows)) },
];

// --- the server and its fake connector ------------------------------------------------

interface Tally {
  rowsRead: number;
}

/** Decodes what a real connector decodes: descriptors, then every value of every batch. */
function decodingConnector(tally: Tally): Connector {
  return {
    format: "fake",
    options: new OptionRegistry("fake", {}),
    async describe(input) {
      return { schema: input.userSchema ?? smallSchema, warnings: [] };
    },
    async planRead() {
      return [encodeDescriptor("fake-partition", { segment: 0 })];
    },
    async *read(input) {
      decodeDescriptor("fake-partition", input.partition);
      yield batch(smallSchema, [[1, "a"]]);
    },
    async planWrite() {
      return encodeDescriptor("fake-plan", {});
    },
    async write(input: WriteInput) {
      decodeDescriptor("fake-plan", input.writePlan);
      let rows = 0;
      for await (const b of input.batches) {
        for (let c = 0; c < b.numCols; c++) tally.rowsRead += readColumn(b.getChildAt(c)!).length;
        rows += b.numRows;
      }
      return { rowsWritten: rows, rowsDeleted: 0, requests: 0, retries: 0 };
    },
    async commitWrite() {},
    async abortWrite() {
      return "";
    },
    async close() {},
  };
}

// --- raw client --------------------------------------------------------------------------

const identity = (b: Buffer) => b;
const toBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

interface Outcome {
  ok: boolean;
  code?: number;
  details?: string;
  errorClass?: string;
}

const root = new protobuf.Root();
const protoDir = findProtoDir();
root.resolvePath = (_o, target) => (target.startsWith("google/protobuf/") ? target : join(protoDir, target));
root.loadSync(["spark_conduit/v1/conduit.proto", "google/rpc/status.proto", "google/rpc/error_details.proto"]);
const types = Object.fromEntries(
  ["DescribeRequest", "PlanReadRequest", "ReadRequest", "PlanWriteRequest", "WriteRequest", "CommitWriteRequest", "AbortWriteRequest"].map((name) => [
    name,
    root.lookupType(`spark_conduit.v1.${name}`),
  ]),
);
const encode = (type: string, message: object) => types[type]!.encode(types[type]!.fromObject(message)).finish();

function errorClassOf(error: grpc.ServiceError): string | undefined {
  const bytes = error.metadata?.get("grpc-status-details-bin")[0];
  if (!(bytes instanceof Buffer)) return undefined;
  const status = root.lookupType("google.rpc.Status").decode(bytes) as unknown as { details: Array<{ value: Uint8Array }> };
  const info = root.lookupType("google.rpc.ErrorInfo").decode(status.details[0]!.value) as unknown as { reason: string };
  return info.reason;
}

function outcomeOf(error: grpc.ServiceError | null): Outcome {
  if (!error) return { ok: true };
  return { ok: false, code: error.code, details: error.details, errorClass: errorClassOf(error) };
}

const deadline = () => ({ deadline: Date.now() + CALL_DEADLINE_MS });
const path = (method: string) => `/spark_conduit.v1.Conduit/${method}`;

function unaryRaw(client: grpc.Client, method: string, body: Uint8Array): Promise<Outcome> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(path(method), identity, identity, toBuffer(body), new grpc.Metadata(), deadline(), (error) => resolve(outcomeOf(error)));
  });
}

function readRaw(client: grpc.Client, body: Uint8Array): Promise<Outcome> {
  return new Promise((resolve) => {
    const call = client.makeServerStreamRequest(path("Read"), identity, identity, toBuffer(body), new grpc.Metadata(), deadline());
    call.on("data", () => {});
    call.on("error", (error: grpc.ServiceError) => resolve(outcomeOf(error)));
    call.on("status", (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) resolve({ ok: true });
    });
  });
}

function writeRaw(client: grpc.Client, messages: Uint8Array[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest(path("Write"), identity, identity, new grpc.Metadata(), deadline(), (error) => resolve(outcomeOf(error)));
    for (const message of messages) call.write(toBuffer(message));
    call.end();
  });
}

// --- checks --------------------------------------------------------------------------

interface Findings {
  calls: number;
  ok: number;
  byClass: Map<string, number>;
  bad: string[];
}

function judge(findings: Findings, label: string, outcome: Outcome) {
  findings.calls++;
  if (outcome.ok) {
    findings.ok++;
    return;
  }
  const key = outcome.errorClass ?? `${grpc.status[outcome.code!]}: ${outcome.details}`;
  findings.byClass.set(key, (findings.byClass.get(key) ?? 0) + 1);
  const details = outcome.details ?? "";
  const problems: string[] = [];
  if (outcome.code === grpc.status.DEADLINE_EXCEEDED) problems.push("hung until the deadline");
  else if (outcome.code === grpc.status.INTERNAL) problems.push("INTERNAL");
  else if (!outcome.errorClass) problems.push("no ErrorInfo");
  if (/undefined|\n\s+at /.test(details)) problems.push("undefined or a stack in the message");
  if (details.length > 2000) problems.push("an overlong message");
  if (problems.length && findings.bad.length < 20) findings.bad.push(`${label}: ${problems.join(", ")} -> ${grpc.status[outcome.code!]} ${outcome.errorClass ?? ""} ${details.slice(0, 300)}`);
}

async function pool<T>(items: T[], run: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < items.length) await run(items[next++]!);
    }),
  );
}

interface Memory {
  arrayBuffers: number;
  heapUsed: number;
  rss: number;
}

/** Samples memory while `work` runs: the peaks above the baseline (ArrayBuffers for buffers, heap for decoded objects, rss for both). */
async function peakMemory(work: () => Promise<void>): Promise<Memory> {
  const base = process.memoryUsage();
  let peakArrayBuffers = base.arrayBuffers;
  let peakHeap = base.heapUsed;
  let peakRss = base.rss;
  const sample = () => {
    const now = process.memoryUsage();
    peakArrayBuffers = Math.max(peakArrayBuffers, now.arrayBuffers);
    peakHeap = Math.max(peakHeap, now.heapUsed);
    peakRss = Math.max(peakRss, now.rss);
  };
  const timer = setInterval(sample, 5);
  try {
    await work();
  } finally {
    clearInterval(timer);
    sample();
  }
  return { arrayBuffers: peakArrayBuffers - base.arrayBuffers, heapUsed: peakHeap - base.heapUsed, rss: peakRss - base.rss };
}

const MiB = 1024 * 1024;

/** Far below what one honoured 2 GB declared length (or a billion decoded objects) would take. */
function expectBounded(memory: Memory) {
  expect(memory.arrayBuffers).toBeLessThan(256 * MiB);
  expect(memory.heapUsed).toBeLessThan(512 * MiB);
  expect(memory.rss).toBeLessThan(768 * MiB);
}

// --- the tests -------------------------------------------------------------------------

let server: RunningServer;
let client: grpc.Client;
const tally: Tally = { rowsRead: 0 };

beforeAll(async () => {
  console.log(`fuzz seed: ${SEED} (FUZZ_SEED=${SEED} reruns it), ${MUTATIONS_PER_TARGET} mutations per target`);
  // The real connectors too: their option parsing runs before any database call, so
  // oversized names and values reach it without a database.
  const connectors = createConnectors(silentLogger);
  connectors.set("fake", decodingConnector(tally));
  server = await startServer({ listen: "127.0.0.1:0", connectors, logger: silentLogger });
  client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await server?.shutdown(1000);
});

async function stillServes() {
  const header = encode("WriteRequest", { header: { format: "fake", arrowSchema: schemas[0], writePlan: encodeDescriptor("fake-plan", {}) } });
  const outcome = await writeRaw(client, [header, encode("WriteRequest", { arrowBatch: batches[0]!.bytes })]);
  expect(outcome).toEqual({ ok: true });
  // No handler is left hanging on a call that ended.
  for (let waited = 0; server.tracker.inFlight > 0 && waited < 5000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  expect(server.tracker.inFlight).toBe(0);
}

function report(name: string, findings: Findings, memory: Memory) {
  const classes = [...findings.byClass.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`);
  console.log(
    `${name}: ${findings.calls} calls, ${findings.ok} ok, peak +${(memory.arrayBuffers / MiB).toFixed(1)} MiB ArrayBuffers, +${(memory.heapUsed / MiB).toFixed(1)} MiB heap, +${(memory.rss / MiB).toFixed(1)} MiB rss; errors: ${classes.join("; ")}`,
  );
}

const newFindings = (): Findings => ({ calls: 0, ok: 0, byClass: new Map(), bad: [] });

describe("fuzzed input to the service", () => {
  it("mutated Arrow IPC schemas and record batches end in a classified error or OK", { timeout: 120_000 }, async () => {
    const rng = prng(SEED);
    const findings = newFindings();
    const plan = encodeDescriptor("fake-plan", {});
    type Case = () => Promise<void>;
    const cases: Case[] = [];
    for (let i = 0; i < MUTATIONS_PER_TARGET; i++) {
      const schema = mutate(rng, rng.pick(schemas));
      const target = rng.pick(["Describe", "PlanRead", "PlanWrite", "WriteHeader"] as const);
      cases.push(async () => {
        const label = `schema/${schema.name}/${target}`;
        if (target === "WriteHeader") {
          const header = encode("WriteRequest", { header: { format: "fake", arrowSchema: schema.bytes, writePlan: plan } });
          judge(findings, label, await writeRaw(client, [header]));
        } else {
          const type = `${target}Request`;
          judge(findings, label, await unaryRaw(client, target, encode(type, { format: "fake", arrowSchema: schema.bytes })));
        }
      });
      const valid = rng.pick(batches);
      const mutated = mutate(rng, valid.bytes);
      const header = encode("WriteRequest", { header: { format: "fake", arrowSchema: encodeSchema(valid.schema), writePlan: plan } });
      cases.push(async () => {
        judge(findings, `batch/${mutated.name}`, await writeRaw(client, [header, encode("WriteRequest", { arrowBatch: mutated.bytes })]));
      });
    }
    const memory = await peakMemory(() => pool(cases, (run) => run()));
    report("Arrow IPC", findings, memory);
    expect(findings.bad).toEqual([]);
    expect(findings.calls).toBe(2 * MUTATIONS_PER_TARGET);
    expect(tally.rowsRead).toBeGreaterThan(0);
    expectBounded(memory);
    await stillServes();
  });

  it("mutated protobuf requests of every method end in a classified error or OK", { timeout: 120_000 }, async () => {
    const rng = prng(SEED + 1);
    const findings = newFindings();
    const plan = encodeDescriptor("fake-plan", {});
    const partition = encodeDescriptor("fake-partition", { segment: 0 });
    const options = { some_option: "value", other: "x" };
    const unary: Array<[string, Uint8Array]> = [
      ["Describe", encode("DescribeRequest", { format: "fake", options, arrowSchema: schemas[0] })],
      ["PlanRead", encode("PlanReadRequest", { format: "fake", options, arrowSchema: schemas[1] })],
      ["PlanWrite", encode("PlanWriteRequest", { format: "fake", options, arrowSchema: schemas[0], overwrite: true, streaming: true })],
      ["CommitWrite", encode("CommitWriteRequest", { format: "fake", options, writePlan: plan, taskResults: [{ rowsWritten: 5, requests: 1 }], batchId: 3 })],
      ["AbortWrite", encode("AbortWriteRequest", { format: "fake", options, writePlan: plan, taskResults: [{ rowsWritten: 5 }], batchId: 3 })],
    ];
    const read = encode("ReadRequest", { format: "fake", options, arrowSchema: schemas[0], partition });
    const header = encode("WriteRequest", { header: { format: "fake", options, arrowSchema: schemas[0], writePlan: plan, partitionId: 1, taskAttemptId: 2 } });
    const body = encode("WriteRequest", { arrowBatch: batches[0]!.bytes });

    const cases: Array<() => Promise<void>> = [];
    for (let i = 0; i < MUTATIONS_PER_TARGET; i++) {
      const [method, valid] = rng.pick(unary);
      const mutated = mutate(rng, valid);
      cases.push(async () => judge(findings, `${method}/${mutated.name}`, await unaryRaw(client, method, mutated.bytes)));
      const readMutation = mutate(rng, read);
      cases.push(async () => judge(findings, `Read/${readMutation.name}`, await readRaw(client, readMutation.bytes)));
      // A Write stream: the header, a batch or both mutated, sometimes messages dropped or repeated.
      const which = rng.int(4);
      const messages =
        which === 0
          ? [mutate(rng, header).bytes, body]
          : which === 1
            ? [header, mutate(rng, body).bytes]
            : which === 2
              ? [mutate(rng, header).bytes, mutate(rng, body).bytes, body]
              : rng.pick([[body], [header, header, body], [body, header], []]);
      cases.push(async () => judge(findings, `Write/${which}`, await writeRaw(client, messages)));
    }
    const memory = await peakMemory(() => pool(cases, (run) => run()));
    report("protobuf", findings, memory);
    expect(findings.bad).toEqual([]);
    expect(findings.calls).toBe(3 * MUTATIONS_PER_TARGET);
    expectBounded(memory);
    await stillServes();
  });

  it("answers bytes that are not protobuf with REQUEST_MALFORMED on every kind of method", async () => {
    // Field 2 (options, or arrow_batch) declares 16 bytes; one follows.
    const garbage = Uint8Array.from([0x12, 0x10, 0x0a]);
    const header = encode("WriteRequest", { header: { format: "fake", arrowSchema: schemas[0], writePlan: encodeDescriptor("fake-plan", {}) } });
    const outcomes = [
      await unaryRaw(client, "Describe", garbage),
      await readRaw(client, garbage),
      await writeRaw(client, [garbage]),
      await writeRaw(client, [header, garbage]),
    ];
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ ok: false, code: grpc.status.INVALID_ARGUMENT, errorClass: "REQUEST_MALFORMED" });
      expect(outcome.details).toMatch(/could not be decoded as a spark_conduit.v1 message/);
    }
    await stillServes();
  });

  it("answers megabyte-long formats, option names and values with a short message, quickly", async () => {
    const mb = "z".repeat(1024 * 1024);
    const findings = newFindings();
    const requests: Array<[string, object, string]> = [
      ["format", { format: mb, options: {} }, "FORMAT_UNKNOWN"],
      ["option name", { format: "dynamodb", options: { [mb]: "x", table_name: "t", aws_region: "us-east-1" } }, "OPTION_UNKNOWN"],
      ["option value", { format: "dynamodb", options: { table_name: "t", aws_region: "us-east-1", consistent_read: mb } }, "OPTION_INVALID_VALUE"],
      ["option name", { format: "pycassandra", options: { [`keyspace${mb}`]: "x" } }, "OPTION_UNKNOWN"],
      ["option value", { format: "pycassandra", options: { keyspace: "k", table: "t", port: `9${mb}` } }, "OPTION_INVALID_VALUE"],
    ];
    const started = performance.now();
    const memory = await peakMemory(async () => {
      for (const [what, request, errorClass] of requests) {
        const outcome = await unaryRaw(client, "Describe", encode("DescribeRequest", request));
        judge(findings, `long ${what}`, outcome);
        expect(outcome.errorClass).toBe(errorClass);
        expect(outcome.details!.length).toBeLessThan(2000);
      }
    });
    report("megabyte-long input", findings, memory);
    expect(findings.bad).toEqual([]);
    expect(performance.now() - started).toBeLessThan(10_000);
    expectBounded(memory);
    await stillServes();
  });

  it("refuses declared lengths of 2 GB and more without allocating them", async () => {
    const valid = batches[0]!.bytes;
    const words = lengthWords(valid, valid.length);
    expect(words.length).toBeGreaterThan(3);
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    let refused = 0;
    for (const at of words) {
      for (const huge of HUGE) {
        const bytes = Uint8Array.from(valid);
        writeInt64(bytes, at, huge);
        try {
          const decoded = decodeBatches(bytes);
          for (const b of decoded) for (let c = 0; c < b.numCols; c++) readColumn(b.getChildAt(c)!);
        } catch (error) {
          expect((error as { errorClass?: string }).errorClass).toBe("ARROW_DECODE_FAILED");
          refused++;
        }
        peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
      }
    }
    console.log(`declared lengths: ${words.length * HUGE.length} corruptions, ${refused} refused, peak +${(peak / MiB).toFixed(1)} MiB ArrayBuffers`);
    expect(refused).toBeGreaterThan(0);
    expect(peak).toBeLessThan(64 * MiB);
    await stillServes();
  });
});
