/**
 * `node dist/fault-proxy.cjs --protocol http|cql|tcp --target HOST:PORT [--latency-ms N] --max-seconds N`
 *
 * Starts a fault relay and a small HTTP control API beside it, both on loopback, and prints ONE
 * JSON line {"host","port","control"} so a test in any language (the e2e tests are Python) can
 * point a client at the relay and steer the faults while the client runs. Exits by itself after
 * --max-seconds, on POST /close, on SIGTERM/SIGINT, and (with --exit-with-stdin) when its parent
 * closes stdin, so a crashed test leaves nothing behind.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { cqlFaults } from "./cql-faults.js";
import { httpFaults } from "./http-faults.js";
import { plainTcpFaults, startFaultRelay, type FaultRelay, type ProtocolFaults } from "./relay.js";

/** One factory per --protocol value; each relay gets a fresh plug-in. */
const protocols: Record<string, () => ProtocolFaults> = {
  http: httpFaults,
  cql: cqlFaults,
  tcp: plainTcpFaults,
};

function usage(message: string): never {
  process.stderr.write(`fault-proxy: ${message}\n`);
  process.stderr.write(
    "usage: fault-proxy --protocol http|cql|tcp --target HOST:PORT [--latency-ms N] --max-seconds N [--exit-with-stdin]\n",
  );
  process.exit(2);
}

function parseTarget(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(":");
  const host = text.slice(0, at);
  const port = Number(text.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) usage(`--target must be HOST:PORT, got "${text}"`);
  return { host, port };
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8").trim();
  return text === "" ? {} : JSON.parse(text);
}

/** The control API: every route answers JSON; a bad plan is a 400 naming the problem. */
function startControl(relay: FaultRelay, faults: ProtocolFaults, shutdown: () => void): Promise<http.Server> {
  const routes: Record<string, (body: unknown) => unknown> = {
    "PUT /faults": (plan) => {
      faults.configure(plan);
      return { ok: true };
    },
    "GET /stats": () => ({ ...faults.stats(), ...prefixed(relay.connectionStats()) }),
    "POST /pause": () => (relay.pause(), { ok: true }),
    "POST /resume": () => (relay.resume(), { ok: true }),
    "POST /reset": () => (relay.resetConnections(), { ok: true }),
    "PUT /latency": (body) => {
      const ms = (body as { ms?: unknown } | null)?.ms;
      if (typeof ms !== "number") throw new Error('PUT /latency takes {"ms": N}');
      relay.setLatency(ms);
      return { ok: true };
    },
    "POST /close": () => (setImmediate(shutdown), { ok: true }),
  };
  const server = http.createServer((req, res) => {
    const route = routes[`${req.method} ${(req.url ?? "").split("?")[0]}`];
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (!route) return answer(404, { error: `no route ${req.method} ${req.url}` });
    readBody(req)
      .then((body) => answer(200, route(body)))
      .catch((error: unknown) => answer(400, { error: error instanceof Error ? error.message : String(error) }));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

function prefixed(stats: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(stats).map(([key, value]) => [`connections_${key}`, value]));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      protocol: { type: "string" },
      target: { type: "string" },
      "latency-ms": { type: "string" },
      "max-seconds": { type: "string" },
      "exit-with-stdin": { type: "boolean" },
    },
  });
  const factory = protocols[values.protocol ?? ""];
  if (!factory) usage(`--protocol must be one of ${Object.keys(protocols).join(", ")}`);
  if (!values.target) usage("--target is required");
  const maxSeconds = Number(values["max-seconds"]);
  if (!(maxSeconds > 0)) usage("--max-seconds N (positive) is required: the proxy must stop by itself");
  const latencyMs = Number(values["latency-ms"] ?? 0);
  if (!(latencyMs >= 0)) usage("--latency-ms must be a non-negative number");

  const faults = factory();
  const relay = await startFaultRelay({ target: parseTarget(values.target), faults, latencyMs, maxSeconds });
  const control = await startControl(relay, faults, () => shutdown());
  function shutdown() {
    control.closeAllConnections();
    control.close();
    void relay.close().then(() => process.exit(0));
    // Bounded even if a socket refuses to close.
    setTimeout(() => process.exit(0), 2000).unref();
  }
  setTimeout(shutdown, maxSeconds * 1000).unref();
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  if (values["exit-with-stdin"]) {
    process.stdin.on("end", shutdown);
    process.stdin.on("close", shutdown);
    process.stdin.resume();
  }
  const controlPort = (control.address() as AddressInfo).port;
  process.stdout.write(`${JSON.stringify({ host: relay.host, port: relay.port, control: `http://127.0.0.1:${controlPort}` })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`fault-proxy: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
