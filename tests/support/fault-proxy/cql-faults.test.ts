/**
 * Frame parsing, error frames and plan validation of the CQL fault plug-in. Decoding by
 * the real driver against a real Cassandra is in tests/integration/cassandra-faults.test.ts.
 */
import { describe, expect, it } from "vitest";
import { describeRequest, errorFrame, HEADER_LENGTH, OPCODES, parsePlan, preparedId, splitFrames } from "./cql-faults.js";

function frame(version: number, stream: number, opcode: number, body: Buffer, flags = 0): Buffer {
  const header = Buffer.alloc(HEADER_LENGTH);
  header[0] = version;
  header[1] = flags;
  header.writeInt16BE(stream, 2);
  header[4] = opcode;
  header.writeInt32BE(body.length, 5);
  return Buffer.concat([header, body]);
}

const short = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const int = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const longString = (s: string) => Buffer.concat([int(Buffer.byteLength(s)), Buffer.from(s)]);

describe("splitFrames", () => {
  it("cuts whole frames and keeps an incomplete tail, whatever the chunking", () => {
    const a = frame(0x04, 1, OPCODES.OPTIONS, Buffer.alloc(0));
    const b = frame(0x04, 2, OPCODES.QUERY, Buffer.concat([longString("SELECT 1"), short(1), Buffer.from([0])]));
    const all = Buffer.concat([a, b]);
    for (let cut = 0; cut <= all.length; cut++) {
      const first = splitFrames(all.subarray(0, cut));
      const second = splitFrames(Buffer.concat([first.rest, all.subarray(cut)]));
      expect([...first.frames, ...second.frames].map((f) => f.stream)).toEqual([1, 2]);
      expect(second.rest.length).toBe(0);
      expect(first.invalid || second.invalid).toBe(false);
    }
  });

  it("flags a header it cannot read (v2, or an HTTP request) instead of guessing", () => {
    expect(splitFrames(frame(0x02, 0, OPCODES.STARTUP, Buffer.alloc(0))).invalid).toBe(true);
    expect(splitFrames(Buffer.from("GET / HTTP/1.1\r\n\r\n")).invalid).toBe(true);
  });
});

describe("errorFrame", () => {
  it("lays out a WriteTimeout as spec section 9 says: code, message, consistency, received, blockfor, write type", () => {
    const bytes = errorFrame(0x04, 77, "write_timeout", { consistency: 6, received: 0, blockfor: 1, writeType: "UNLOGGED_BATCH" });
    const [f] = splitFrames(bytes).frames;
    expect([f!.version, f!.stream, f!.opcode]).toEqual([0x84, 77, OPCODES.ERROR]);
    const body = f!.body;
    expect(body.readInt32BE(0)).toBe(0x1100);
    const messageLength = body.readUInt16BE(4);
    let at = 6 + messageLength;
    expect(body.readUInt16BE(at)).toBe(6);
    expect(body.readInt32BE(at + 2)).toBe(0);
    expect(body.readInt32BE(at + 6)).toBe(1);
    at += 10;
    expect(body.toString("utf8", at + 2, at + 2 + body.readUInt16BE(at))).toBe("UNLOGGED_BATCH");
    expect(at + 2 + body.readUInt16BE(at)).toBe(body.length);
  });

  it("reports fewer replicas alive than required in Unavailable", () => {
    const [f] = splitFrames(errorFrame(0x04, 1, "unavailable", { consistency: 4, received: 5, blockfor: 2, writeType: "SIMPLE" })).frames;
    const at = 6 + f!.body.readUInt16BE(4);
    expect(f!.body.readInt32BE(0)).toBe(0x1000);
    expect([f!.body.readUInt16BE(at), f!.body.readInt32BE(at + 2), f!.body.readInt32BE(at + 6)]).toEqual([4, 2, 1]);
  });
});

describe("describeRequest", () => {
  it("reads the consistency and the statements of a BATCH past its values (null ones included)", () => {
    const id = Buffer.from("abcd", "hex");
    const body = Buffer.concat([
      Buffer.from([1]), // UNLOGGED
      short(2),
      Buffer.concat([Buffer.from([1]), short(id.length), id, short(2), int(3), Buffer.from("xyz"), int(-1)]),
      Buffer.concat([Buffer.from([0]), longString("INSERT INTO ks.t (k) VALUES (1)"), short(0)]),
      short(0x0006),
      Buffer.from([0]),
    ]);
    expect(describeRequest(OPCODES.BATCH, body)).toEqual({ consistency: 6, texts: ["INSERT INTO ks.t (k) VALUES (1)"], ids: ["abcd"], batchType: 1 });
  });

  it("gives what it read from a body cut short, without throwing", () => {
    expect(describeRequest(OPCODES.EXECUTE, Buffer.from([0, 9, 1]))).toEqual({ consistency: undefined, texts: [], ids: [], batchType: undefined });
  });
});

describe("preparedId", () => {
  it("finds the id of a Prepared result, also behind warnings", () => {
    const warnings = Buffer.concat([short(1), short(2), Buffer.from("hi")]);
    const body = Buffer.concat([warnings, int(4), short(2), Buffer.from("beef", "hex"), int(0)]);
    expect(preparedId(body, 0x08)).toBe("beef");
    expect(preparedId(Buffer.concat([int(1)]), 0)).toBeUndefined();
  });
});

describe("parsePlan", () => {
  it("rejects unknown faults, fields and out-of-range numbers, naming them", () => {
    expect(() => parsePlan({ rules: [{ fault: "explode" }] })).toThrow(/unknown fault "explode"/);
    expect(() => parsePlan({ rules: [{ fault: "overloaded", probabilty: 0.1 }] })).toThrow(/unknown field 'probabilty'/);
    expect(() => parsePlan({ rules: [{ fault: "overloaded", probability: 2 }] })).toThrow(/'probability' must be a number from 0 to 1/);
    expect(() => parsePlan({ rules: [{ fault: "pause" }] })).toThrow(/needs 'ms'/);
    expect(() => parsePlan({ rules: [{ fault: "overloaded", opcodes: ["STARTUP"] }] })).toThrow(/opcodes/);
    expect(() => parsePlan({ faults: [] })).toThrow(/unknown field/);
  });

  it("defaults to data requests (EXECUTE, BATCH), every match, no limit", () => {
    const [rule] = parsePlan({ rules: [{ fault: "write_timeout" }] }).rules;
    expect(rule).toMatchObject({ opcodes: ["EXECUTE", "BATCH"], probability: 1, every: 1, after: 0, received: 0, blockfor: 1 });
  });
});
