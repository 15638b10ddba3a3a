import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { plainTcpFaults, startFaultRelay, type FaultRelay } from "./relay.js";

/** A real TCP echo server on loopback: the relay's target. */
async function echoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Sends `text` and resolves with the first `text.length` bytes echoed back. */
function roundTrip(socket: net.Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const onData = (chunk: Buffer) => {
      got += chunk.toString();
      if (got.length >= text.length) {
        socket.off("data", onData);
        resolve(got);
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write(text);
  });
}

function connect(relay: FaultRelay): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(relay.port, relay.host, () => resolve(socket));
    socket.once("error", reject);
  });
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(latencyMs = 0) {
  const echo = await echoServer();
  cleanups.push(echo.close);
  const relay = await startFaultRelay({
    target: { host: "127.0.0.1", port: echo.port },
    faults: plainTcpFaults(),
    latencyMs,
    maxSeconds: 30,
  });
  cleanups.push(relay.close);
  const socket = await connect(relay);
  cleanups.push(() => void socket.destroy());
  return { relay, socket };
}

describe("fault relay", () => {
  it("relays bytes both ways unchanged and in order", async () => {
    const { socket } = await setup();
    const text = Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join("");
    expect(await roundTrip(socket, text)).toBe(text);
  });

  it("adds the latency to each direction", async () => {
    const { relay, socket } = await setup();
    relay.setLatency(150);
    const started = Date.now();
    expect(await roundTrip(socket, "ping")).toBe("ping");
    // Once to the server, once back: at least twice the latency.
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it("holds bytes while paused and delivers them on resume", async () => {
    const { relay, socket } = await setup();
    relay.pause();
    let got = "";
    socket.on("data", (chunk: Buffer) => (got += chunk.toString()));
    socket.write("held");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(got).toBe("");
    relay.resume();
    await expect.poll(() => got, { timeout: 5000 }).toBe("held");
  });

  it("resets open connections so the client sees a connection error", async () => {
    const { relay, socket } = await setup();
    expect(await roundTrip(socket, "before")).toBe("before");
    const closed = new Promise<string>((resolve) => {
      socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
      socket.once("close", () => resolve("closed"));
    });
    relay.resetConnections();
    expect(await closed).toBe("ECONNRESET");
    expect(relay.connectionStats()).toEqual({ accepted: 1, open: 0, reset: 1 });
  });

  it("closes itself after maxSeconds", async () => {
    const echo = await echoServer();
    cleanups.push(echo.close);
    const relay = await startFaultRelay({
      target: { host: "127.0.0.1", port: echo.port },
      faults: plainTcpFaults(),
      maxSeconds: 0.3,
    });
    await new Promise((resolve) => setTimeout(resolve, 600));
    await expect(connect(relay)).rejects.toThrow(/ECONNREFUSED/);
  });
});
