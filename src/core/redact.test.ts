import { describe, expect, it } from "vitest";
import { cassandraOptions } from "../backends/cassandra/options.js";
import { dynamoDbOptions } from "../backends/dynamodb/options.js";
import { createLogger } from "./logger.js";
import { describeError, isSecretName, redact, redactText, secretValuesOf } from "./redact.js";

const PASSWORD = "Hunter2-pw!x";
const SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN = `FwoGZXIvYXdzEBYaDH${"Kx9q+Lm2Zt7Wd".repeat(12)}==`;
const KEY_ID = "AKIAIOSFODNN7EXAMPLE";

function expectClean(text: string, ...secrets: string[]) {
  for (const secret of secrets) expect(text).not.toContain(secret);
}

describe("isSecretName", () => {
  it("matches exactly the options the registries flag as secret, in both backends", () => {
    for (const registry of [dynamoDbOptions, cassandraOptions]) {
      for (const [name, spec] of Object.entries(registry.specs)) expect({ name, secret: isSecretName(name) }).toEqual({ name, secret: spec.secret });
    }
    expect(cassandraOptions.secretNames()).toEqual(new Set(["service_token", "password"]));
  });

  it("knows header and configuration names that carry credentials", () => {
    for (const name of ["Authorization", "x-amz-security-token", "ssl_key", "private_key", "api_key", "client_secret", "passwd"]) expect(isSecretName(name)).toBe(true);
    for (const name of ["hash_key", "range_key", "keyspace", "table_name", "aws_access_key_id", "ssl_ca_cert"]) expect(isSecretName(name)).toBe(false);
  });
});

describe("redactText", () => {
  it("removes the request's secret values wherever they appear, also URL- and JSON-encoded", () => {
    const secrets = secretValuesOf({ password: PASSWORD, aws_secret_access_key: SECRET_KEY, table: "users", service_token: "tok-123456" });
    expect(secrets).not.toContain("users");
    const text = `login failed for user admin with ${PASSWORD}; sig=${encodeURIComponent(PASSWORD)}; body {"k":${JSON.stringify(SECRET_KEY)}} tok-123456`;
    const out = redactText(text, secrets);
    expectClean(out, PASSWORD, encodeURIComponent(PASSWORD), SECRET_KEY, "tok-123456");
    expect(out).toContain("login failed for user admin");
  });

  it("removes a secret value only as a whole word, so names that contain it stay readable", () => {
    const out = redactText("format 'pycassandra': Provided username cassandra and/or password are incorrect", secretValuesOf({ password: "cassandra" }));
    expect(out).toBe("format 'pycassandra': Provided username *** and/or password are incorrect");
  });

  it.each([
    ["password=hunter2 host=h", "password=*** host=h", "hunter2"],
    ['aws_secret_access_key: "abc def"', "aws_secret_access_key: ***", "abc def"],
    ['{"aws_session_token":"IQoJb3JpZ2luX2VjE","region":"x"}', '{"aws_session_token":***,"region":"x"}', "IQoJb3JpZ2luX2VjE"],
    ["Authorization: Bearer abc.def-ghi", "Authorization: ***", "abc.def-ghi"],
    ["authorization=basic dXNlcjpwYXNz", "authorization=***", "dXNlcjpwYXNz"],
    ["headers X-Amz-Security-Token: zzTOKENzz next", "headers X-Amz-Security-Token: *** next", "zzTOKENzz"],
    ["sent Bearer s3cr3t-t0ken to the server", "sent Bearer *** to the server", "s3cr3t-t0ken"],
    ["endpoint https://admin:pa55@db.internal:8000/x", "endpoint https://admin:***@db.internal:8000/x", "pa55"],
    [`key ${KEY_ID} denied`, "key *** denied", KEY_ID],
    [`creds ${SECRET_KEY} leaked`, "creds *** leaked", SECRET_KEY],
    [`token blob ${SESSION_TOKEN} end`, "token blob *** end", SESSION_TOKEN],
  ])("redacts %s", (text, expected, secret) => {
    const out = redactText(text);
    expect(out).toBe(expected);
    expectClean(out, secret);
  });

  it("leaves ordinary messages and stack frames alone", () => {
    const text = [
      "Table 'orders' not found in keyspace 'shop'",
      "the token range (-9223372036854775808, 0] was read; a bearer token is required",
      "    at next (/work/node_modules/cassandra-driver/lib/tokenizer.js:120:15)",
      "sha 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
    ].join("\n");
    expect(redactText(text)).toBe(text);
  });

  it("takes linear time on long runs of word characters", () => {
    const hex = "ab12".repeat(100_000);
    const started = performance.now();
    expect(redactText(`dump ${hex} password=x ${"a".repeat(200_000)}:// end`)).toContain("password=***");
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("skips key=value text on request for messages we wrote", () => {
    const ours = "The service requires a bearer token: set the service_token option.";
    expect(redactText(ours, [], { keyValues: false })).toBe(ours);
  });
});

describe("redact (objects)", () => {
  it("hides values under secret names, recurses, and survives cycles and bigints", () => {
    const cyclic: Record<string, unknown> = { name: "x", n: 10n, options: { password: PASSWORD, aws_session_token: SESSION_TOKEN, table: "t" }, tls: true, nodeTokens: 3 };
    cyclic.self = cyclic;
    const out = redact(cyclic) as Record<string, unknown>;
    expect(out).toEqual({ name: "x", n: "10", options: { password: "***", aws_session_token: "***", table: "t" }, tls: true, nodeTokens: 3, self: "[circular]" });
  });

  it("turns errors into name, message, stack and cause, all redacted", () => {
    const cause = new Error(`driver said password=${PASSWORD}`);
    const error = Object.assign(new Error(`failed with ${SECRET_KEY}`, { cause }), { code: "EAUTH", credentials: { user: "u" } });
    const out = JSON.stringify(redact(error, secretValuesOf({ password: PASSWORD })));
    expectClean(out, PASSWORD, SECRET_KEY);
    expect(out).toContain("EAUTH");
    expect(out).toContain("redact.test.ts");
    expect(JSON.parse(out)).toMatchObject({ name: "Error", code: "EAUTH", credentials: "***", cause: { name: "Error", message: "driver said password=***" } });
  });
});

describe("describeError", () => {
  it("walks causes and nested errors with their stacks, redacting each", () => {
    const inner = new Error(`connect to 10.0.0.1 with ${PASSWORD}`);
    const aggregate = new AggregateError([inner], "All host(s) tried for query failed");
    const top = new Error("query failed", { cause: aggregate });
    const text = describeError(top, secretValuesOf({ password: PASSWORD }))!;
    expectClean(text, PASSWORD);
    expect(text).toContain("caused by: AggregateError: All host(s) tried");
    expect(text).toContain("inner: Error: connect to 10.0.0.1 with ***");
    expect(text).toMatch(/at .*redact\.test\.ts/);
    expect(describeError(undefined)).toBeUndefined();
    const plain = describeError({ password: PASSWORD, code: 1 })!;
    expectClean(plain, PASSWORD);
    expect(plain).toContain('"code":1');
  });
});

describe("logger", () => {
  it("redacts every field, the message and nested errors before the sink sees them", () => {
    const lines: string[] = [];
    const logger = createLogger("debug", { password: PASSWORD }, (line) => lines.push(line)).child({ endpoint: `https://u:${PASSWORD}@h` });
    logger.error(`failed: Authorization: Bearer ${SESSION_TOKEN}`, {
      options: { aws_secret_access_key: SECRET_KEY, aws_access_key_id: KEY_ID, table_name: "t" },
      error: new Error(`echo aws_secret_access_key=${SECRET_KEY}`, { cause: new Error(`key ${KEY_ID}`) }),
      note: `creds ${SECRET_KEY}`,
      count: 5n,
    });
    expect(lines).toHaveLength(1);
    expectClean(lines[0]!, PASSWORD, SECRET_KEY, SESSION_TOKEN, KEY_ID);
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(record).toMatchObject({ level: "error", password: "***", count: "5", options: { aws_secret_access_key: "***", table_name: "t" } });
    expect(typeof record.time).toBe("string");
  });
});
