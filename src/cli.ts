#!/usr/bin/env node
/**
 * `spark-conduit serve` runs the service; `spark-conduit options-doc` prints (or writes
 * into README.md) the options reference generated from the registries.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createConnectors } from "./backends/index.js";
import { DEFAULT_LOG_MAX_BYTES, openLogFile } from "./core/log-file.js";
import { createLogger, type LogLevel } from "./core/logger.js";
import { readTokenFile } from "./core/token-file.js";
import { renderOptionsReference, replaceOptionsBlock } from "./options/docs.js";
import { startServer } from "./transport/server.js";

export const VERSION = "0.1.0";

// The SDK warns once per process that Node 20 support ends; the service's package pins an
// SDK that supports Node 20, and the warning would only be noise in the service log.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const USAGE = `Usage:
  spark-conduit serve [--listen ADDR] [--token-file FILE] [--tls-cert FILE --tls-key FILE]
                      [--pid-file FILE] [--idle-exit-seconds N] [--grace-seconds N]
                      [--max-message-bytes N] [--log-level debug|info|warn|error]
                      [--log-file FILE [--log-max-bytes N]]
  spark-conduit options-doc [--update README.md]
  spark-conduit --version

ADDR is unix:/path/to.sock or host:port (default 127.0.0.1:50551). Off loopback, TLS and a
token are required. The token comes from --token-file (mode 0600 or stricter) or from the
SPARK_CONDUIT_TOKEN environment variable, never from the command line (ps shows it to all).
Logs are JSON lines on stderr, or in --log-file, which is rotated to FILE.1 when it reaches
--log-max-bytes (default 10 MiB).`;

async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: "string", default: process.env.SPARK_CONDUIT_LISTEN ?? "127.0.0.1:50551" },
      // Only to refuse it with a reason: a token in the arguments is visible in ps.
      token: { type: "string" },
      "token-file": { type: "string" },
      "log-file": { type: "string" },
      "log-max-bytes": { type: "string", default: String(DEFAULT_LOG_MAX_BYTES) },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "pid-file": { type: "string" },
      "idle-exit-seconds": { type: "string" },
      "grace-seconds": { type: "string", default: "30" },
      "max-message-bytes": { type: "string" },
      "log-level": { type: "string", default: process.env.SPARK_CONDUIT_LOG_LEVEL ?? "info" },
    },
    strict: true,
  });
  if (values.token !== undefined) {
    throw new Error("--token is not accepted: every local user can read a process's arguments (ps). Put the token in a file readable only by the service's user and pass --token-file FILE, or set SPARK_CONDUIT_TOKEN.");
  }
  const token = values["token-file"] ? readTokenFile(values["token-file"]) : process.env.SPARK_CONDUIT_TOKEN || undefined;
  const logFile = values["log-file"] ? openLogFile(values["log-file"], Number(values["log-max-bytes"])) : undefined;
  const logger = createLogger(values["log-level"] as LogLevel, { service: "spark-conduit", pid: process.pid }, logFile ? (line) => logFile.write(line) : undefined);
  const tlsCert = values["tls-cert"];
  const tlsKey = values["tls-key"];
  if (!!tlsCert !== !!tlsKey) throw new Error("--tls-cert and --tls-key go together.");
  const server = await startServer({
    listen: values.listen,
    connectors: createConnectors(logger),
    logger,
    token,
    tls: tlsCert && tlsKey ? { certFile: tlsCert, keyFile: tlsKey } : undefined,
    maxMessageBytes: values["max-message-bytes"] ? Number(values["max-message-bytes"]) : undefined,
  });
  const pidFile = values["pid-file"];
  if (pidFile) writeFileSync(pidFile, String(process.pid));
  // Written last: whoever waits for this line may connect at once.
  process.stdout.write(`spark-conduit listening on ${server.address}\n`);

  const graceMillis = Number(values["grace-seconds"]) * 1000;
  let exiting = false;
  const stop = (reason: string) => {
    if (exiting) return;
    exiting = true;
    logger.info("stop requested", { reason });
    void server.shutdown(graceMillis).finally(() => {
      if (pidFile) {
        try {
          if (readFileSync(pidFile, "utf8").trim() === String(process.pid)) rmSync(pidFile, { force: true });
        } catch {
          // already removed
        }
      }
      process.exit(0);
    });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));

  const idleSeconds = values["idle-exit-seconds"] ? Number(values["idle-exit-seconds"]) : 0;
  if (idleSeconds > 0) {
    setInterval(() => {
      if (server.tracker.idleMillis() >= idleSeconds * 1000) stop(`idle for ${idleSeconds} s`);
    }, Math.min(idleSeconds * 1000, 5000)).unref();
  }
}

function optionsDoc(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: { update: { type: "string" } }, strict: true });
  const reference = renderOptionsReference([...createConnectors(createLogger("error", {}, () => {})).values()]);
  if (!values.update) {
    process.stdout.write(reference + "\n");
    return;
  }
  writeFileSync(values.update, replaceOptionsBlock(readFileSync(values.update, "utf8"), reference));
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  switch (command) {
    case "serve":
      return serve(rest);
    case "options-doc":
      return optionsDoc(rest);
    case "--version":
    case "version":
      process.stdout.write(`${VERSION}\n`);
      return;
    default:
      process.stdout.write(USAGE + "\n");
      if (command !== "--help" && command !== "help") process.exitCode = 2;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`spark-conduit: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
