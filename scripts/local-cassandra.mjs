#!/usr/bin/env node
// Starts and stops a real single-node Apache Cassandra 5.0 for tests, the quickstart and
// the benchmark. No Docker needed: scripts/setup.sh puts cassandra-all and its runtime
// dependencies (from Maven Central, see scripts/cassandra/pom.xml) in .local/cassandra/lib,
// and this runs org.apache.cassandra.service.CassandraDaemon from there on Java 17, with a
// generated cassandra.yaml, loopback only, password authentication and client TLS.
//
//   node scripts/local-cassandra.mjs start [--state-dir DIR]          prints the connection info as JSON
//   node scripts/local-cassandra.mjs stop  [--state-dir DIR] [--keep] stops it and removes DIR unless --keep
//
// Also importable: `startCassandra({ stateDir?, keep?, detached? })` returns
// { host, port, tlsPort, caCertFile, username, password, localDataCenter, stateDir, pid, stop() }.
//
// The native (CQL) port takes plain and TLS clients alike (client_encryption_options
// enabled + optional); the server certificate (for 127.0.0.1 and localhost) is signed by
// a CA made at each start, whose PEM certificate is `caCertFile`. The login is the
// default superuser cassandra/cassandra. Heap: -Xms512m -Xmx1g, or -Xmx$CASSANDRA_HEAP.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const HOST = "127.0.0.1";
const USERNAME = "cassandra";
const PASSWORD = "cassandra";
const DATA_CENTER = "datacenter1";
const MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon";
const MARKER = ".local-cassandra";

// The module flags of Cassandra's own conf/jvm17-server.options (JPMS section).
const JAVA17_MODULE_FLAGS = [
  "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
  "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
  "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
  "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
  "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
  "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
  "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
  "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
  "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
  "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
  "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
  "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
  "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
  "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
  "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
  "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
  "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
  "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
  "--add-opens", "java.base/java.io=ALL-UNNAMED",
  "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
  "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
  "--add-opens", "java.base/java.lang=ALL-UNNAMED",
  "--add-opens", "java.base/java.util=ALL-UNNAMED",
];

/** The directory scripts/setup.sh fills with cassandra-all and its runtime dependencies. */
export function findCassandraLib() {
  const lib = join(projectRoot, ".local", "cassandra", "lib");
  const jars = existsSync(lib) ? readdirSync(lib).filter((f) => f.endsWith(".jar")) : [];
  const main = jars.find((f) => /^cassandra-all-.*\.jar$/.test(f));
  if (!main) throw new Error(`Apache Cassandra is not installed (no cassandra-all jar in ${lib}): run 'bash scripts/setup.sh' first.`);
  return { lib, jars: jars.map((f) => join(lib, f)), version: main.replace(/^cassandra-all-(.*)\.jar$/, "$1") };
}

export async function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

async function distinctFreePorts(count) {
  const ports = new Set();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** A CA and a server certificate for 127.0.0.1/localhost signed by it, as PEM files in `dir`. */
function makeCertificates(dir) {
  const openssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  try {
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
      "-subj", "/CN=spark-conduit local Cassandra CA", "-keyout", "ca.key", "-out", "ca.pem",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr");
    writeFileSync(join(dir, "server.ext"), [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "",
    ].join("\n"));
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
      "-sha256", "-days", "30", "-extfile", "server.ext", "-out", "server.crt");
  } catch (error) {
    const detail = error.code === "ENOENT" ? "'openssl' is not on PATH" : String(error.stderr ?? error.message).trim();
    throw new Error(`Could not make the TLS certificates for Cassandra: ${detail}`);
  }
  // PEMBasedSslContextFactory reads the (unencrypted PKCS#8) key and its certificate chain from one file.
  const keystore = join(dir, "server-keystore.pem");
  writeFileSync(keystore, ["server.key", "server.crt", "ca.pem"].map((f) => readFileSync(join(dir, f), "utf8")).join(""), { mode: 0o600 });
  for (const f of ["ca.key", "ca.srl", "server.key", "server.csr", "server.ext"]) rmSync(join(dir, f), { force: true });
  return { caCertFile: join(dir, "ca.pem"), keystore };
}

function cassandraYaml({ stateDir, nativePort, storagePort, sslStoragePort, keystore, caCertFile }) {
  const q = (s) => JSON.stringify(s); // JSON strings are valid YAML scalars
  const data = join(stateDir, "data");
  return `# Generated by scripts/local-cassandra.mjs: a single loopback node for tests.
cluster_name: ${q("spark-conduit local")}
num_tokens: 16
allocate_tokens_for_local_replication_factor: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${HOST}:${storagePort}"
listen_address: ${HOST}
rpc_address: ${HOST}
storage_port: ${storagePort}
ssl_storage_port: ${sslStoragePort}
native_transport_port: ${nativePort}
start_native_transport: true
data_file_directories:
  - ${q(join(data, "data"))}
commitlog_directory: ${q(join(data, "commitlog"))}
saved_caches_directory: ${q(join(data, "saved_caches"))}
hints_directory: ${q(join(data, "hints"))}
cdc_raw_directory: ${q(join(data, "cdc_raw"))}
commitlog_sync: periodic
commitlog_sync_period: 10000ms
authenticator: PasswordAuthenticator
authorizer: CassandraAuthorizer
role_manager: CassandraRoleManager
auto_snapshot: false
concurrent_compactors: 1
# A loaded 2-core test machine is slow: be generous before timing out requests.
read_request_timeout: 10000ms
range_request_timeout: 20000ms
write_request_timeout: 10000ms
counter_write_request_timeout: 10000ms
request_timeout: 20000ms
client_encryption_options:
  enabled: true
  optional: true
  require_client_auth: false
  ssl_context_factory:
    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory
  keystore: ${q(keystore)}
  truststore: ${q(caCertFile)}
`;
}

function logbackXml(stateDir) {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/local-cassandra.mjs: INFO and up to system.log, WARN and up to stdout. -->
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>${join(stateDir, "system.log")}</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <filter class="ch.qos.logback.classic.filter.ThresholdFilter"><level>WARN</level></filter>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="FILE" />
    <appender-ref ref="STDOUT" />
  </root>
</configuration>
`;
}

function javaArgs({ lib, jars, stateDir }) {
  const heap = process.env.CASSANDRA_HEAP ? [`-Xmx${process.env.CASSANDRA_HEAP}`] : ["-Xms512m", "-Xmx1g"];
  const jamm = jars.find((j) => /\/jamm-[^/]*\.jar$/.test(j));
  return [
    ...heap,
    "-Xss256k",
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:+UseThreadPriorities",
    "-XX:+PerfDisableSharedMem",
    "-XX:+HeapDumpOnOutOfMemoryError",
    "-XX:+ExitOnOutOfMemoryError",
    `-XX:HeapDumpPath=${stateDir}`,
    "-ea",
    "-da:net.openhft...",
    ...(jamm ? [`-javaagent:${jamm}`] : []),
    "-Djava.net.preferIPv4Stack=true",
    "-Djdk.attach.allowAttachSelf=true",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
    ...JAVA17_MODULE_FLAGS,
    "-Dcassandra-foreground=yes",
    `-Dcassandra.config=file://${join(stateDir, "cassandra.yaml")}`,
    `-Dcassandra.storagedir=${join(stateDir, "data")}`,
    `-Dcassandra.logdir=${stateDir}`,
    `-Dlogback.configurationFile=file://${join(stateDir, "logback.xml")}`,
    `-Djava.io.tmpdir=${join(stateDir, "tmp")}`,
    `-Djna.tmpdir=${join(stateDir, "tmp")}`,
    `-Dcassandra.triggers_dir=${join(stateDir, "triggers")}`,
    // Start-up speed-ups for a single fresh node.
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.ring_delay_ms=100",
    "-Dcassandra.superuser_setup_delay_ms=0",
    "-Dcassandra.skip_sync=true",
    "-cp",
    join(lib, "*"),
    MAIN_CLASS,
  ];
}

function tail(file, lines = 30) {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

async function portOpen(port) {
  return new Promise((ok) => {
    const socket = connect(port, HOST);
    socket.once("connect", () => { socket.destroy(); ok(true); });
    socket.once("error", () => ok(false));
  });
}

async function loadDriver() {
  try {
    return (await import("cassandra-driver")).default;
  } catch (error) {
    throw new Error(`The npm package cassandra-driver is missing (run 'npm ci'): ${error.message}`);
  }
}

/** Runs one query as cassandra/cassandra, over TLS when `ca` is given; throws on failure. */
async function query(driver, port, cql, ca) {
  const client = new driver.Client({
    contactPoints: [`${HOST}:${port}`],
    localDataCenter: DATA_CENTER,
    authProvider: new driver.auth.PlainTextAuthProvider(USERNAME, PASSWORD),
    socketOptions: { connectTimeout: 5000, readTimeout: 10000 },
    ...(ca ? { sslOptions: { ca: [ca], host: HOST, servername: "localhost", rejectUnauthorized: true } } : {}),
  });
  try {
    await client.connect();
    return await client.execute(cql);
  } finally {
    await client.shutdown().catch(() => {});
  }
}

async function waitUntilReady({ child, port, caCertFile, timeoutMs, logFile }) {
  const driver = await loadDriver();
  const deadline = Date.now() + timeoutMs;
  let lastError = "the CQL port never opened";
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`Cassandra exited (${child.exitCode ?? child.signalCode}) during start-up. Last output:\n${tail(logFile)}`);
    }
    if (await portOpen(port)) {
      try {
        await query(driver, port, "SELECT release_version FROM system.local");
        // The superuser can log in: check TLS on the same port too, so a broken TLS set-up fails here.
        await query(driver, port, "SELECT release_version FROM system.local", readFileSync(caCertFile, "utf8"));
        return;
      } catch (error) {
        lastError = error.message;
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`Cassandra did not accept a CQL login within ${timeoutMs / 1000} s (last error: ${lastError}). Last output:\n${tail(logFile)}`);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
async function killAndWait(pid, graceMs) {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (!alive()) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  while (alive()) await new Promise((r) => setTimeout(r, 50));
}

/**
 * Starts a fresh single-node Cassandra on loopback and waits until the default superuser
 * can log in, in plain text and over TLS. `stateDir` (default: a new temp dir) holds the
 * configuration, certificates, data and logs; `stop()` removes it unless `keep`.
 * `detached` keeps Cassandra running after this process exits (the CLI's `start`).
 */
export async function startCassandra({ stateDir, keep = false, detached = false, startTimeoutMs = 120_000, stopGraceMs = 30_000, onSpawn } = {}) {
  const { lib, jars, version } = findCassandraLib();
  const dir = stateDir ? resolve(stateDir) : mkdtempSync(join(tmpdir(), "spark-conduit-cassandra-"));
  if (stateDir) rmSync(join(dir, "data"), { recursive: true, force: true }); // always a fresh node
  mkdirSync(join(dir, "tmp"), { recursive: true });
  mkdirSync(join(dir, "triggers"), { recursive: true });
  mkdirSync(join(dir, "data"), { recursive: true });
  writeFileSync(join(dir, MARKER), "a state dir of scripts/local-cassandra.mjs: removed on stop\n");
  const { caCertFile, keystore } = makeCertificates(dir);
  const [nativePort, storagePort, sslStoragePort] = await distinctFreePorts(3);
  writeFileSync(join(dir, "cassandra.yaml"), cassandraYaml({ stateDir: dir, nativePort, storagePort, sslStoragePort, keystore, caCertFile }));
  writeFileSync(join(dir, "logback.xml"), logbackXml(dir));
  const logFile = join(dir, "output.log");
  const out = openSync(logFile, "w");
  const child = spawn(process.env.JAVA ?? "java", javaArgs({ lib, jars, stateDir: dir }), { cwd: dir, stdio: ["ignore", out, out], detached });
  closeSync(out);
  const spawnError = new Promise((_, reject) => child.once("error", (e) => reject(new Error(`Could not start Java for Cassandra: ${e.message}`))));
  spawnError.catch(() => {}); // it only matters while start-up races it
  if (child.pid !== undefined) onSpawn?.(child.pid);
  const killOnExit = () => child.kill("SIGKILL");
  if (!detached) process.once("exit", killOnExit);
  const removeState = () => {
    if (!keep) removeStateDir(dir);
  };
  const stop = async () => {
    process.removeListener("exit", killOnExit);
    if (child.pid !== undefined) await killAndWait(child.pid, stopGraceMs);
    removeState();
  };
  try {
    await Promise.race([waitUntilReady({ child, port: nativePort, caCertFile, timeoutMs: startTimeoutMs, logFile }), spawnError]);
  } catch (error) {
    process.removeListener("exit", killOnExit);
    if (child.pid !== undefined) await killAndWait(child.pid, 5000);
    // Keep an explicitly named state dir for its logs; a temp one goes.
    if (!stateDir) removeState();
    throw error;
  }
  if (detached) child.unref();
  return {
    host: HOST,
    port: nativePort,
    tlsPort: nativePort,
    caCertFile,
    username: USERNAME,
    password: PASSWORD,
    localDataCenter: DATA_CENTER,
    version,
    stateDir: dir,
    pid: child.pid,
    stop,
  };
}

function parseArgs(argv) {
  const args = { command: argv[0], keep: false, stateDir: join(projectRoot, ".local", "cassandra-run") };
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === "--state-dir") args.stateDir = resolve(argv[++i]);
    else if (argv[i] === "--keep") args.keep = true;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

/** Removes a state dir, but only one this script made (it holds the marker file). */
function removeStateDir(dir) {
  if (existsSync(join(dir, MARKER))) rmSync(dir, { recursive: true, force: true });
}

/** The pid in DIR/pid if that process is still a CassandraDaemon (pids get reused). */
function runningPid(pidFile) {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8"));
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(MAIN_CLASS) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const pidFile = join(args.stateDir, "pid");
  if (args.command === "start") {
    const previous = runningPid(pidFile);
    if (previous) await killAndWait(previous, 30_000);
    // The pid file is written as soon as Java runs, so that `stop` finds a start cut short.
    const local = await startCassandra({ stateDir: args.stateDir, keep: true, detached: true, onSpawn: (pid) => writeFileSync(pidFile, String(pid)) });
    const { stop: _stop, ...info } = local;
    writeFileSync(join(args.stateDir, "connection.json"), JSON.stringify(info, null, 2) + "\n");
    process.stdout.write(JSON.stringify(info) + "\n");
  } else if (args.command === "stop") {
    const pid = runningPid(pidFile);
    if (pid) await killAndWait(pid, 30_000);
    rmSync(pidFile, { force: true });
    if (!args.keep) removeStateDir(args.stateDir);
  } else {
    throw new Error("usage: local-cassandra.mjs start|stop [--state-dir DIR] [--keep]");
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    process.stderr.write(`local-cassandra: ${error.message}\n`);
    process.exit(1);
  });
}
