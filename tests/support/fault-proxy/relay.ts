/**
 * A loopback TCP relay to one database that hands each connection's byte streams to a
 * protocol plug-in, so tests can inject faults a real network and a real server produce
 * (throttling, resets mid-response, stalls, latency) without mocking either end.
 * Test tool only: binds 127.0.0.1, and closes itself after maxSeconds so a forgotten
 * relay cannot outlive its test run.
 */
import net from "node:net";

export interface RelayConnection {
  readonly id: number;
  /** Bytes to the database, as if the client sent them. */
  sendToServer(bytes: Buffer): void;
  /** Bytes to the client, as if the database sent them. */
  sendToClient(bytes: Buffer): void;
  /** Ends both sockets abruptly (TCP RST where possible). */
  destroy(): void;
  /** True once destroy() ran or either socket closed; plug-ins stop sending then. */
  readonly destroyed: boolean;
}

export interface ProtocolFaults {
  /** Each chunk from the client; forward (maybe altered, delayed or answered directly) with conn.sendToServer. */
  onClientData(conn: RelayConnection, chunk: Buffer): void;
  /** Each chunk from the database; forward with conn.sendToClient. */
  onServerData(conn: RelayConnection, chunk: Buffer): void;
  /** Takes a JSON fault plan for this protocol (validated; throws on an unknown fault). */
  configure(plan: unknown): void;
  /** Counts of what was injected, e.g. { "write_timeout": 12, "requests": 3400 }. */
  stats(): Record<string, number>;
  /** Optional: a connection closed (drop per-connection parsing state). */
  onClose?(conn: RelayConnection): void;
}

export interface FaultRelay {
  readonly host: string;
  readonly port: number;
  /** Added to every chunk, both directions, order kept. */
  setLatency(ms: number): void;
  /** Stop forwarding (buffer) both ways, like a stopped process. */
  pause(): void;
  resume(): void;
  /** Destroy every open connection now. */
  resetConnections(): void;
  close(): Promise<void>;
  /** Connections accepted so far and open now (for assertions that a reset really happened). */
  connectionStats(): { accepted: number; open: number; reset: number };
}

/** Past this many queued bytes in one direction the sending socket stops being read. */
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;

interface Queued {
  bytes: Buffer;
  due: number;
}

/**
 * One direction of one connection: chunks wait here for their latency and while the relay
 * is paused, then go out in order. Reading from the source stops while too much waits, so a
 * paused relay does not buffer a whole table in memory.
 */
class Lane {
  private readonly queue: Queued[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private endAfterFlush = false;

  constructor(
    private readonly source: net.Socket,
    private readonly sink: net.Socket,
    private readonly relay: RelayState,
  ) {}

  push(bytes: Buffer): void {
    if (this.sink.destroyed || bytes.length === 0) return;
    this.queue.push({ bytes, due: Date.now() + this.relay.latencyMs });
    this.queuedBytes += bytes.length;
    if (this.queuedBytes > HIGH_WATER) this.source.pause();
    this.pump();
  }

  /** The source ended: end the sink once everything queued went out. */
  end(): void {
    this.endAfterFlush = true;
    this.pump();
  }

  pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.sink.destroyed) return;
    if (this.relay.paused) return;
    const now = Date.now();
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (head.due > now) {
        this.timer = setTimeout(() => this.pump(), head.due - now);
        return;
      }
      this.queue.shift();
      this.queuedBytes -= head.bytes.length;
      this.sink.write(head.bytes);
    }
    if (this.queuedBytes < LOW_WATER && this.source.isPaused() && !this.source.destroyed) this.source.resume();
    if (this.endAfterFlush) this.sink.end();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }
}

interface RelayState {
  latencyMs: number;
  paused: boolean;
}

export async function startFaultRelay(options: {
  target: { host: string; port: number };
  faults: ProtocolFaults;
  latencyMs?: number;
  maxSeconds: number;
}): Promise<FaultRelay> {
  const { target, faults } = options;
  if (!(options.maxSeconds > 0)) throw new Error("maxSeconds must be positive: the relay must stop by itself");
  const state: RelayState = { latencyMs: checkLatency(options.latencyMs ?? 0), paused: false };
  const open = new Set<{ destroy(): void; lanes: Lane[] }>();
  let nextId = 1;
  let accepted = 0;
  let reset = 0;

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    accepted++;
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const toServer = new Lane(client, upstream, state);
    const toClient = new Lane(upstream, client, state);
    let destroyed = false;
    const conn: RelayConnection & { lanes: Lane[] } = {
      id: nextId++,
      lanes: [toServer, toClient],
      get destroyed() {
        return destroyed;
      },
      sendToServer: (bytes) => toServer.push(bytes),
      sendToClient: (bytes) => toClient.push(bytes),
      destroy: () => {
        if (destroyed) return;
        reset++;
        finish(true);
      },
    };
    const finish = (abrupt: boolean) => {
      if (destroyed) return;
      destroyed = true;
      toServer.clear();
      toClient.clear();
      for (const socket of [client, upstream]) {
        // resetAndDestroy sends RST, which is what a crashed peer or a dropped link looks like.
        if (abrupt && !socket.destroyed && socket.readyState !== "opening") socket.resetAndDestroy();
        else socket.destroy();
      }
      open.delete(conn);
      faults.onClose?.(conn);
    };
    open.add(conn);

    client.on("data", (chunk: Buffer) => {
      if (!destroyed) faults.onClientData(conn, chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!destroyed) faults.onServerData(conn, chunk);
    });
    client.on("end", () => toServer.end());
    upstream.on("end", () => toClient.end());
    // Either side failing or closing ends the pair: a relay never keeps half a connection.
    client.on("error", () => finish(true));
    upstream.on("error", () => finish(true));
    client.on("close", () => finish(false));
    upstream.on("close", () => finish(false));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      clearTimeout(lifetime);
      server.close(() => resolve());
      for (const conn of [...open]) conn.destroy();
    });
    return closing;
  };
  // Unref'd: the open server keeps the process alive, this timer only bounds it.
  const lifetime = setTimeout(() => void close(), options.maxSeconds * 1000);
  lifetime.unref();

  const pumpAll = () => {
    for (const conn of open) for (const lane of conn.lanes) lane.pump();
  };

  return {
    host: "127.0.0.1",
    port: address.port,
    setLatency(ms) {
      state.latencyMs = checkLatency(ms);
    },
    pause() {
      state.paused = true;
    },
    resume() {
      state.paused = false;
      pumpAll();
    },
    resetConnections() {
      for (const conn of [...open]) conn.destroy();
    },
    close,
    connectionStats: () => ({ accepted, open: open.size, reset }),
  };
}

function checkLatency(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`latency must be a non-negative number of milliseconds, got ${ms}`);
  return ms;
}

/** The plug-in for --protocol tcp: forwards bytes unchanged (latency, pause and resets still apply). */
export function plainTcpFaults(): ProtocolFaults {
  let chunks = 0;
  return {
    onClientData: (conn, chunk) => {
      chunks++;
      conn.sendToServer(chunk);
    },
    onServerData: (conn, chunk) => conn.sendToClient(chunk),
    configure(plan) {
      if (plan !== null && !(typeof plan === "object" && Object.keys(plan as object).length === 0)) {
        throw new Error("the tcp protocol has no faults to configure (use latency, pause or reset)");
      }
    },
    stats: () => ({ client_chunks: chunks }),
  };
}
