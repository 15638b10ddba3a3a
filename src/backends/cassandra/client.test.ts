import { describe, expect, it } from "vitest";
import type { PeerCertificate } from "node:tls";
import { checkNodeIdentity, clientConfigFromOptions, clientKey, connectionsFor, describeTarget, endpointText, type ClientConfig } from "./client.js";
import { parseCassandraOptions } from "./options.js";

function config(extra: Record<string, string> = {}): ClientConfig {
  return clientConfigFromOptions(parseCassandraOptions({ host: "10.0.0.2,10.0.0.1:9043", keyspace: "ks", table: "t", ...extra }, "write"));
}

/** A certificate as Node's checkServerIdentity sees it. */
function cert(subjectaltname: string): PeerCertificate {
  return { subject: { CN: "node" }, subjectaltname } as unknown as PeerCertificate;
}

describe("client configuration", () => {
  it("keys the pool by contact points (any order), port, credentials, TLS and tuning, never by the password", () => {
    const base = clientKey(config({ username: "u", password: "p1" }));
    expect(clientKey(config({ host: "10.0.0.1:9043,10.0.0.2", username: "u", password: "p1" }))).toBe(base);
    expect(clientKey(config({ username: "u", password: "p2" }))).not.toBe(base);
    expect(clientKey(config({ username: "u", password: "p1", port: "9999" }))).not.toBe(base);
    expect(clientKey(config({ username: "u", password: "p1", ssl_enabled: "true" }))).not.toBe(base);
    expect(clientKey(config({ username: "u", password: "p1", local_datacenter: "dc2" }))).not.toBe(base);
    expect(base).not.toContain("p1");
  });

  it("formats endpoints and targets for the driver and for messages", () => {
    expect(endpointText({ host: "::1", port: 9042 })).toBe("[::1]:9042");
    expect(describeTarget(config())).toBe("10.0.0.2:9042, 10.0.0.1:9043");
    expect(describeTarget(config({ ssl_enabled: "true" }))).toContain("(TLS)");
  });

  it("opens more connections per node only for very high concurrency", () => {
    expect(connectionsFor(1)).toBe(1);
    expect(connectionsFor(100)).toBe(1);
    expect(connectionsFor(1000)).toBe(2);
    expect(connectionsFor(100_000)).toBe(8);
  });

  it("accepts a localhost certificate at a loopback address, and nothing else that does not match", () => {
    expect(checkNodeIdentity("127.0.0.1", cert("DNS:localhost"))).toBeUndefined();
    expect(checkNodeIdentity("127.0.0.1", cert("IP Address:127.0.0.1"))).toBeUndefined();
    expect(checkNodeIdentity("10.0.0.1", cert("DNS:localhost"))).toBeInstanceOf(Error);
    expect(checkNodeIdentity("127.0.0.1", cert("DNS:db.example.com"))).toBeInstanceOf(Error);
  });
});
