/**
 * The local Cassandra that scripts/local-cassandra.mjs starts (through the global setup or
 * scripts/test.sh) is what the Cassandra tests rely on: password authentication, TLS on
 * the native port with the CA it hands out, 16 vnodes, and keyspaces that can be made and used.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import cassandra from "cassandra-driver";
import "../support/provided-context.js";

const info = inject("cassandra");
const keyspace = `it_local_${Date.now().toString(36)}`;

function client(options: { password?: string; tls?: "ca" | "no-ca"; keyspace?: string } = {}): cassandra.Client {
  const tls = options.tls;
  return new cassandra.Client({
    contactPoints: [`${info.host}:${tls ? info.tlsPort : info.port}`],
    localDataCenter: info.localDataCenter,
    authProvider: new cassandra.auth.PlainTextAuthProvider(info.username, options.password ?? info.password),
    keyspace: options.keyspace,
    socketOptions: { connectTimeout: 10_000, readTimeout: 20_000 },
    ...(tls
      ? { sslOptions: { ...(tls === "ca" ? { ca: [readFileSync(info.caCertFile, "utf8")] } : {}), host: info.host, servername: "localhost", rejectUnauthorized: true } }
      : {}),
  });
}

async function connectionError(c: cassandra.Client): Promise<string> {
  try {
    await c.connect();
  } catch (error) {
    const inner = (error as { innerErrors?: Record<string, Error> }).innerErrors ?? {};
    return [String(error), ...Object.values(inner).map(String)].join("\n");
  } finally {
    await c.shutdown();
  }
  throw new Error("the connection unexpectedly succeeded");
}

let plain: cassandra.Client;

beforeAll(async () => {
  plain = client();
  await plain.connect();
});

afterAll(async () => {
  await plain?.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => {});
  await plain?.shutdown();
});

describe("local Cassandra", () => {
  it("is Cassandra 5.0 and takes the default superuser's password login", async () => {
    const rs = await plain.execute("SELECT release_version FROM system.local");
    expect(rs.first().get("release_version")).toMatch(/^5\.0\./);
    const me = await plain.execute("SELECT role, is_superuser, can_login FROM system_auth.roles WHERE role = ?", [info.username], { prepare: true });
    expect(me.first().get("is_superuser")).toBe(true);
  });

  it("rejects a wrong password", async () => {
    const message = await connectionError(client({ password: `${info.password}-wrong` }));
    expect(message).toMatch(/Provided username .* and\/or password are incorrect|AuthenticationError/i);
  });

  it("takes TLS clients that trust the CA it hands out, on the TLS port", async () => {
    const tls = client({ tls: "ca" });
    try {
      await tls.connect();
      // system_views.clients lists each connection with whether it is encrypted.
      const rs = await tls.execute("SELECT ssl_enabled, ssl_protocol, username FROM system_views.clients");
      const encrypted = rs.rows.filter((r) => r.get("ssl_enabled") === true);
      expect(encrypted.length).toBeGreaterThan(0);
      expect(encrypted[0]!.get("ssl_protocol")).toMatch(/^TLSv1\.[23]$/);
      expect(encrypted[0]!.get("username")).toBe(info.username);
      // Plain clients (this file's other one) are connected at the same time, on the same port.
      expect(rs.rows.some((r) => r.get("ssl_enabled") === false)).toBe(true);
      expect(info.tlsPort).toBe(info.port);
    } finally {
      await tls.shutdown();
    }
  });

  it("fails TLS for a client that does not trust the CA", async () => {
    const message = await connectionError(client({ tls: "no-ca" }));
    expect(message).toMatch(/certificate|self.signed|unable to (get|verify)/i);
  });

  it("has one node with 16 tokens", async () => {
    const local = await plain.execute("SELECT tokens, data_center, partitioner FROM system.local");
    const tokens = local.first().get("tokens") as string[];
    expect(tokens).toHaveLength(16);
    expect(local.first().get("data_center")).toBe(info.localDataCenter);
    expect(local.first().get("partitioner")).toBe("org.apache.cassandra.dht.Murmur3Partitioner");
    const peers = await plain.execute("SELECT peer FROM system.peers_v2");
    expect(peers.rowLength).toBe(0);
    // The driver sees the same ring: 16 token ranges.
    expect(plain.metadata.getTokenRanges().size).toBe(16);
  });

  it("creates and uses a SimpleStrategy keyspace with replication factor 1", async () => {
    await plain.execute(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    const ks = client({ keyspace });
    try {
      await ks.connect();
      await ks.execute("CREATE TABLE items (id int PRIMARY KEY, name text)");
      const insert = "INSERT INTO items (id, name) VALUES (?, ?)";
      await Promise.all(Array.from({ length: 50 }, (_, i) => ks.execute(insert, [i, `item ${i}`], { prepare: true })));
      const rs = await ks.execute("SELECT id, name FROM items");
      expect(rs.rowLength).toBe(50);
      const one = await ks.execute("SELECT name FROM items WHERE id = ?", [7], { prepare: true });
      expect(one.first().get("name")).toBe("item 7");
    } finally {
      await ks.shutdown();
    }
  });
});
