/**
 * The gRPC server: binds, serves Conduit and Health, drains on shutdown. Loopback and
 * unix sockets may be plaintext; any other address requires TLS and a bearer token.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { Connector } from "../core/connector.js";
import type { Logger } from "../core/logger.js";
import { requireToken } from "./auth.js";
import { rejectMalformed, tolerantDeserializers } from "./malformed.js";
import { CallTracker, createConduitHandlers } from "./handlers.js";
import { createHealthHandlers, HealthState } from "./health.js";
import { loadProtos } from "./proto.js";

export interface ServerConfig {
  /** `unix:/path`, `host:port` (port 0 picks a free one). */
  listen: string;
  connectors: ReadonlyMap<string, Connector>;
  logger: Logger;
  token?: string;
  tls?: { certFile: string; keyFile: string };
  /** Largest message accepted or sent. */
  maxMessageBytes?: number;
}

export interface RunningServer {
  /** The bound address, with the real port when 0 was asked for. */
  address: string;
  port: number;
  tracker: CallTracker;
  /** Stops accepting calls, lets in-flight calls finish for up to `graceMillis`, then cancels the rest. */
  shutdown(graceMillis?: number): Promise<void>;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

export function isLoopbackAddress(listen: string): boolean {
  if (listen.startsWith("unix:")) return true;
  const host = hostOf(listen);
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  if (isIP(host) === 6) return host === "::1";
  return false;
}

function hostOf(listen: string): string {
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(listen);
  if (bracketed) return bracketed[1]!;
  const index = listen.lastIndexOf(":");
  return index < 0 ? listen : listen.slice(0, index);
}

export async function startServer(config: ServerConfig): Promise<RunningServer> {
  const loopback = isLoopbackAddress(config.listen);
  if (!loopback && (!config.tls || !config.token)) {
    throw new Error(
      `Refusing to listen on ${config.listen} without TLS and a token: off loopback the service requires --tls-cert, --tls-key and --token-file (or SPARK_CONDUIT_TOKEN).`,
    );
  }
  const protos = loadProtos();
  const maxBytes = config.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const server = new grpc.Server({
    "grpc.max_receive_message_length": maxBytes,
    "grpc.max_send_message_length": maxBytes,
    "grpc.keepalive_permit_without_calls": 1,
  });
  const tracker = new CallTracker();
  const health = new HealthState();
  const handlers = createConduitHandlers({ connectors: config.connectors, logger: config.logger, tracker, maxMessageBytes: maxBytes });
  const conduit = tolerantDeserializers(protos.conduit);
  server.addService(conduit, requireToken(conduit, rejectMalformed(conduit, handlers), config.token));
  server.addService(protos.health, createHealthHandlers(health));

  const credentials = config.tls
    ? grpc.ServerCredentials.createSsl(null, [{ private_key: readFileSync(config.tls.keyFile), cert_chain: readFileSync(config.tls.certFile) }], false)
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(config.listen, credentials, (error, boundPort) => (error ? reject(error) : resolve(boundPort))));
  const address = config.listen.startsWith("unix:") ? config.listen : `${hostOf(config.listen)}:${port}`;
  config.logger.info("listening", { address, tls: !!config.tls, auth: !!config.token, formats: [...config.connectors.keys()] });

  let stopping: Promise<void> | undefined;
  return {
    address,
    port,
    tracker,
    shutdown(graceMillis = 30_000) {
      stopping ??= (async () => {
        health.serving = false;
        config.logger.info("shutting down", { inFlight: tracker.inFlight, graceMillis });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            config.logger.warn("grace period over: cancelling calls still in flight", { inFlight: tracker.inFlight });
            server.forceShutdown();
            resolve();
          }, graceMillis);
          timer.unref();
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        await Promise.all([...config.connectors.values()].map((c) => c.close().catch(() => undefined)));
        config.logger.info("stopped");
      })();
      return stopping;
    },
  };
}
