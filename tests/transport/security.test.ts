/**
 * Security of the transport: secrets planted in options, in a database's error message and
 * in causes and stacks never reach a log line or a client's status; the bearer token guards
 * the streaming calls too; a TLS listener serves only clients that trust its CA.
 * Real servers on port 0 with a fake connector, real grpc-js clients, real certificates
 * made by openssl.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Field, Int32, Schema, type RecordBatch } from "apache-arrow";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { encodeBatch, encodeSchema } from "../../src/arrow/ipc.js";
import { BatchBuilder } from "../../src/arrow/batch-builder.js";
import type { Connector } from "../../src/core/connector.js";
import { ConduitError } from "../../src/core/errors.js";
import { createLogger, type Logger } from "../../src/core/logger.js";
import { OptionRegistry } from "../../src/options/registry.js";
import { errorDetails, serviceClients, type Client } from "../support/grpc-client.js";
import { startServer, type RunningServer } from "../../src/transport/server.js";
import { toServiceError } from "../../src/transport/status.js";

const PASSWORD = "pw-Zq81!hunter";
const SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKY";
const SESSION_TOKEN = "IQoJb3JpZ2luX2VjEHgaCXVzLWVhc3QtMSJHMEUCIQ-session";
const TOKEN = "svc-token-4f1c9a";
const SECRETS = [PASSWORD, SECRET_KEY, SESSION_TOKEN, TOKEN];
const OPTIONS = { table: "users", password: PASSWORD, aws_secret_access_key: SECRET_KEY, aws_session_token: SESSION_TOKEN };

const schema = new Schema([new Field("id", new Int32(), false)]);
function batch(): RecordBatch {
  const builder = new BatchBuilder(schema);
  for (let i = 0; i < 10; i++) builder.appendRow([i]);
  return builder.flush();
}

/** What a careless driver does: echo the credentials it was given, in the message, a cause and the stack. */
function leakyDriverError(options: Record<string, string>): Error {
  const cause = new Error(`socket to 10.0.0.7 closed; config {"password":"${options.password}","secret":"${options.aws_secret_access_key}"}`);
  const error = new Error(`AuthenticationError: Provided username admin and/or password ${options.password} are incorrect (session ${options.aws_session_token})`, { cause });
  error.stack = `${error.stack ?? ""}\n    at login (driver.js:10:2) password=${options.password}`;
  return error;
}

interface Calls {
  reads: number;
  writes: number;
}

function fakeConnector(calls: Calls): Connector {
  return {
    format: "fake",
    options: new OptionRegistry("fake", {}),
    async describe(input) {
      if (input.options.classified === "yes") {
        // A classified error whose message and parameters quote the driver's text.
        const text = leakyDriverError(input.options).message;
        throw new ConduitError({ code: "UNAUTHENTICATED", errorClass: "FAKE_AUTH_FAILED", message: `The database refused the login: ${text}`, parameters: { reason: text, password: input.options.password ?? "" }, cause: leakyDriverError(input.options) });
      }
      throw leakyDriverError(input.options);
    },
    async planRead() {
      return [Buffer.from("p0")];
    },
    // Fails before the first batch, as a refused login does.
    async *read(input) {
      calls.reads++;
      throw leakyDriverError(input.options);
    },
    async planWrite() {
      return Buffer.from("plan");
    },
    async write(input) {
      calls.writes++;
      for await (const _b of input.batches) {
        // consume
      }
      throw leakyDriverError(input.options);
    },
    async commitWrite() {},
    async abortWrite() {
      return "";
    },
    async close() {},
  };
}

function conduitClient(address: string, credentials = grpc.credentials.createInsecure()): Client {
  return serviceClients(address, { credentials }).conduit;
}

function bearer(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

function describeCall(client: Client, options: Record<string, string>, metadata = new grpc.Metadata()): Promise<grpc.ServiceError | undefined> {
  return new Promise((resolve) => client.Describe({ format: "fake", options }, metadata, { deadline: Date.now() + 20_000 }, (e: grpc.ServiceError | null) => resolve(e ?? undefined)));
}

async function readCall(client: Client, options: Record<string, string>, metadata = new grpc.Metadata()): Promise<{ messages: number; error?: grpc.ServiceError }> {
  const call = client.Read({ format: "fake", options, arrowSchema: encodeSchema(schema), partition: Buffer.from("p0") }, metadata) as grpc.ClientReadableStream<unknown>;
  let messages = 0;
  try {
    for await (const _m of call) messages++;
  } catch (e) {
    return { messages, error: e as grpc.ServiceError };
  }
  return { messages };
}

function writeCall(client: Client, options: Record<string, string>, metadata = new grpc.Metadata()): Promise<grpc.ServiceError | undefined> {
  return new Promise((resolve) => {
    const call = (client.Write as (m: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<object>)(metadata, (e) => resolve(e ?? undefined));
    call.on("error", () => undefined);
    call.write({ header: { format: "fake", options, arrowSchema: encodeSchema(schema), writePlan: Buffer.from("plan") } });
    for (let i = 0; i < 3; i++) call.write({ arrowBatch: encodeBatch(batch()) });
    call.end();
  });
}

function decodeStatus(error: grpc.ServiceError): { message: string; reason: string; metadata: Record<string, string> } {
  const { message, reason, metadata } = errorDetails(error);
  return { message, reason, metadata };
}

/** Everything a client can see of an error, as one text to search for secrets. */
function visible(error: grpc.ServiceError): string {
  const status = decodeStatus(error);
  return JSON.stringify({ message: error.message, details: error.details, status, trailers: error.metadata.getMap() });
}

function expectNoSecret(text: string) {
  for (const secret of SECRETS) expect(text).not.toContain(secret);
}

function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger("debug", { service: "test" }, (line) => lines.push(line)), lines };
}

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.shutdown(1000);
  server = undefined;
});

describe("toServiceError redacts", () => {
  it("(a) options, (b) a database's message and (c) causes and stacks: neither the status nor the log line has a secret", () => {
    const { logger, lines } = capturingLogger();
    const error = toServiceError(leakyDriverError(OPTIONS), "Describe", logger, OPTIONS);
    expect(error.code).toBe(grpc.status.INTERNAL);
    expectNoSecret(visible(error));
    expect(error.details).toContain("Describe failed: Error: AuthenticationError: Provided username admin and/or password *** are incorrect");
    expect(lines).toHaveLength(1);
    expectNoSecret(lines[0]!);
    const line = JSON.parse(lines[0]!) as { level: string; cause: string };
    expect(line.level).toBe("error");
    // The cause chain and stacks are still there to debug with, minus the secrets.
    expect(line.cause).toContain("caused by: Error: socket to 10.0.0.7 closed");
    expect(line.cause).toContain("at login (driver.js:10:2) password=***");
  });

  it("scrubs a classified error's message and parameters, keeping its class and our own wording", () => {
    const { logger, lines } = capturingLogger();
    const raw = new ConduitError({ code: "UNAUTHENTICATED", errorClass: "X_AUTH", message: `login refused for ${PASSWORD}: check the password option`, parameters: { reason: `echo ${SECRET_KEY}`, password: PASSWORD, option: "password" } });
    const error = toServiceError(raw, "Describe", logger, OPTIONS);
    expectNoSecret(visible(error));
    expect(decodeStatus(error)).toEqual({ message: "login refused for ***: check the password option", reason: "X_AUTH", metadata: { reason: "echo ***", password: "***", option: "password" } });
    expect(lines).toEqual([]);
  });

  it("scrubs secrets that only look like secrets, without the request's options", () => {
    const error = toServiceError(new Error(`denied for AKIAIOSFODNN7EXAMPLE with ${SECRET_KEY} and Authorization: Bearer ${TOKEN}`), "Read");
    expectNoSecret(visible(error));
    expect(error.details).not.toContain("AKIAIOSFODNN7EXAMPLE");
  });
});

describe("a real server", () => {
  it("never lets a secret of the request reach the log or the client, on unary, Read and Write calls", async () => {
    const { logger, lines } = capturingLogger();
    const calls: Calls = { reads: 0, writes: 0 };
    server = await startServer({ listen: "127.0.0.1:0", connectors: new Map([["fake", fakeConnector(calls)]]), logger, token: TOKEN });
    const client = conduitClient(`127.0.0.1:${server.port}`);
    try {
      const describeError = (await describeCall(client, OPTIONS, bearer(TOKEN)))!;
      expect(describeError.code).toBe(grpc.status.INTERNAL);
      const classified = (await describeCall(client, { ...OPTIONS, classified: "yes" }, bearer(TOKEN)))!;
      expect(classified.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(decodeStatus(classified).reason).toBe("FAKE_AUTH_FAILED");
      const read = await readCall(client, OPTIONS, bearer(TOKEN));
      expect(read.error?.code).toBe(grpc.status.INTERNAL);
      const write = (await writeCall(client, OPTIONS, bearer(TOKEN)))!;
      expect(write.code).toBe(grpc.status.INTERNAL);
      expect(calls).toEqual({ reads: 1, writes: 1 });
      for (const error of [describeError, classified, read.error!, write]) {
        expectNoSecret(visible(error));
        expect(error.details).toContain("***");
      }
    } finally {
      client.close();
    }
    const internal = lines.filter((l) => l.includes('"internal error"'));
    expect(internal.map((l) => (JSON.parse(l) as { operation: string }).operation)).toEqual(["Describe", "Read", "Write"]);
    for (const line of lines) expectNoSecret(line);
  });

  it("rejects a missing or wrong token on the streaming Read and the client-streaming Write before the connector runs", async () => {
    const calls: Calls = { reads: 0, writes: 0 };
    server = await startServer({ listen: "127.0.0.1:0", connectors: new Map([["fake", fakeConnector(calls)]]), logger: createLogger("error", {}, () => {}), token: TOKEN });
    const client = conduitClient(`127.0.0.1:${server.port}`);
    try {
      for (const metadata of [new grpc.Metadata(), bearer("wrong-token"), bearer(`${TOKEN}x`)]) {
        const read = await readCall(client, OPTIONS, metadata);
        expect(read.messages).toBe(0);
        expect(read.error?.code).toBe(grpc.status.UNAUTHENTICATED);
        expect(decodeStatus(read.error!).reason).toBe("SERVICE_TOKEN_INVALID");
        const write = (await writeCall(client, OPTIONS, metadata))!;
        expect(write.code).toBe(grpc.status.UNAUTHENTICATED);
        expect(decodeStatus(write).reason).toBe("SERVICE_TOKEN_INVALID");
        expect(write.details).toContain("service_token");
      }
      expect(calls).toEqual({ reads: 0, writes: 0 });
      // The right token reaches the connector (which then fails as it was built to).
      expect((await readCall(client, OPTIONS, bearer(TOKEN))).error?.code).toBe(grpc.status.INTERNAL);
      expect((await writeCall(client, OPTIONS, bearer(TOKEN)))?.code).toBe(grpc.status.INTERNAL);
      expect(calls).toEqual({ reads: 1, writes: 1 });
    } finally {
      client.close();
    }
  });
});

describe("TLS", () => {
  let dir: string;
  let ca: Buffer;
  let otherCa: Buffer;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "conduit-tls-"));
    const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe", timeout: 30_000 });
    for (const name of ["ca", "other-ca"]) {
      openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=spark-conduit test ${name}`);
    }
    writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext");
    ca = readFileSync(join(dir, "ca.pem"));
    otherCa = readFileSync(join(dir, "other-ca.pem"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function startTls(): Promise<string> {
    server = await startServer({
      listen: "127.0.0.1:0",
      connectors: new Map([["fake", fakeConnector({ reads: 0, writes: 0 })]]),
      logger: createLogger("error", {}, () => {}),
      token: TOKEN,
      tls: { certFile: join(dir, "server.pem"), keyFile: join(dir, "server.key") },
    });
    return `127.0.0.1:${server.port}`;
  }

  it("serves a client that trusts the CA and sends the token, on unary and streaming calls", async () => {
    const client = conduitClient(await startTls(), grpc.credentials.createSsl(ca));
    try {
      // The fake connector fails every call: INTERNAL proves the call passed TLS and the token check.
      expect((await describeCall(client, { table: "t" }, bearer(TOKEN)))?.code).toBe(grpc.status.INTERNAL);
      expect((await readCall(client, { table: "t" }, bearer(TOKEN))).error?.code).toBe(grpc.status.INTERNAL);
      expect((await writeCall(client, { table: "t" }, bearer(TOKEN)))?.code).toBe(grpc.status.INTERNAL);
      expect((await readCall(client, { table: "t" }, bearer("wrong"))).error?.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
  });

  it("fails a client that trusts another CA, and a plaintext client", async () => {
    const address = await startTls();
    for (const credentials of [grpc.credentials.createSsl(otherCa), grpc.credentials.createInsecure()]) {
      const client = conduitClient(address, credentials);
      try {
        const error = await describeCall(client, { table: "t" }, bearer(TOKEN));
        expect(error?.code).toBe(grpc.status.UNAVAILABLE);
      } finally {
        client.close();
      }
    }
  });

  it("refuses to listen off loopback without TLS or without a token", async () => {
    const base = { listen: "0.0.0.0:0", connectors: new Map<string, Connector>(), logger: createLogger("error", {}, () => {}) };
    await expect(startServer({ ...base, token: TOKEN })).rejects.toThrow(/without TLS and a token/);
    await expect(startServer({ ...base, tls: { certFile: join(dir, "server.pem"), keyFile: join(dir, "server.key") } })).rejects.toThrow(/without TLS and a token/);
  });
});
