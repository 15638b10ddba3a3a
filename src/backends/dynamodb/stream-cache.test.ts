import { describe, expect, it } from "vitest";
import type { _Record } from "@aws-sdk/client-dynamodb-streams";
import { FakeClock } from "../../../tests/support/fake-clock.js";
import { recordBytes, runKey, StreamRecordCache } from "./stream-cache.js";
import { fakeSeq, fakeStreamArn } from "./test-fakes.js";

const ARN = fakeStreamArn("users");

/** Records of 1,000 cache bytes each (4 * SizeBytes + 256), numbered from `from`. */
function run(from: number, count: number): _Record[] {
  return Array.from({ length: count }, (_, i) => ({ eventID: `e${from + i}`, dynamodb: { SequenceNumber: fakeSeq(from + i), SizeBytes: 186 } }));
}

const ids = (records: _Record[] | undefined) => records?.map((r) => r.eventID);

describe("StreamRecordCache", () => {
  it("counts a record by DynamoDB's SizeBytes, 1 KB when unknown", () => {
    expect(recordBytes(run(1, 1)[0]!)).toBe(1000);
    expect(recordBytes({ dynamodb: {} })).toBe(4 * 1024 + 256);
  });

  it("keys a run by stream, shard and where it starts", () => {
    const keys = new Set([runKey(ARN, "s1", null), runKey(ARN, "s1", fakeSeq(5)), runKey(ARN, "s2", null), runKey(fakeStreamArn("users", "other"), "s1", null)]);
    expect(keys.size).toBe(4);
    expect(runKey(ARN, "s1", fakeSeq(5))).toBe(runKey(ARN, "s1", fakeSeq(5)));
  });

  it("gives a run back once: take removes it", () => {
    const cache = new StreamRecordCache(10_000, 60_000, new FakeClock());
    const key = runKey(ARN, "s1", null);
    cache.put(key, run(1, 3));
    expect(cache.size).toEqual({ runs: 1, bytes: 3000 });
    expect(ids(cache.take(runKey(ARN, "s1", fakeSeq(1))))).toBeUndefined();
    expect(ids(cache.take(key))).toEqual(["e1", "e2", "e3"]);
    expect(cache.size).toEqual({ runs: 0, bytes: 0 });
    expect(cache.take(key)).toBeUndefined();
  });

  it("replaces a run put again under the same key without counting it twice", () => {
    const cache = new StreamRecordCache(10_000, 60_000, new FakeClock());
    const key = runKey(ARN, "s1", null);
    cache.put(key, run(1, 2));
    cache.put(key, run(1, 3));
    expect(cache.size).toEqual({ runs: 1, bytes: 3000 });
    expect(ids(cache.take(key))).toEqual(["e1", "e2", "e3"]);
  });

  it("keeps nothing for an empty run or a cache of 0 bytes", () => {
    const cache = new StreamRecordCache(10_000, 60_000, new FakeClock());
    cache.put(runKey(ARN, "s1", null), []);
    expect(cache.size).toEqual({ runs: 0, bytes: 0 });
    const none = new StreamRecordCache(0, 60_000, new FakeClock());
    none.put(runKey(ARN, "s1", null), run(1, 1));
    expect(none.size.runs).toBe(0);
    expect(none.maxRunBytes).toBe(0);
  });

  it("expires runs after the TTL: take finds nothing and forgets them", () => {
    const clock = new FakeClock();
    const cache = new StreamRecordCache(10_000, 1000, clock);
    const other = runKey(ARN, "s1", null);
    const stale = runKey(ARN, "s2", null);
    cache.put(stale, run(1, 1));
    clock.time += 999;
    expect(ids(cache.take(stale))).toEqual(["e1"]);
    cache.put(stale, run(1, 1));
    cache.put(other, run(2, 1));
    clock.time += 1000;
    expect(cache.take(stale)).toBeUndefined();
    expect(cache.size).toEqual({ runs: 1, bytes: 1000 });
    // An expired run is dropped as soon as another run is put, even before anyone asks for it.
    cache.put(runKey(ARN, "s3", null), run(3, 1));
    expect(cache.size).toEqual({ runs: 1, bytes: 1000 });
    expect(cache.take(other)).toBeUndefined();
  });

  it("stays within its byte bound by evicting the oldest runs first", () => {
    const cache = new StreamRecordCache(5000, 60_000, new FakeClock());
    const keys = ["s1", "s2", "s3"].map((s) => runKey(ARN, s, null));
    cache.put(keys[0]!, run(1, 2));
    cache.put(keys[1]!, run(3, 2));
    expect(cache.size).toEqual({ runs: 2, bytes: 4000 });
    cache.put(keys[2]!, run(5, 2));
    expect(cache.size).toEqual({ runs: 2, bytes: 4000 });
    expect(cache.take(keys[0]!)).toBeUndefined();
    expect(ids(cache.take(keys[1]!))).toEqual(["e3", "e4"]);
    expect(ids(cache.take(keys[2]!))).toEqual(["e5", "e6"]);
  });

  it("does not keep a run larger than half the cache, so one run never empties it", () => {
    const cache = new StreamRecordCache(4000, 60_000, new FakeClock());
    expect(cache.maxRunBytes).toBe(2000);
    const kept = runKey(ARN, "s1", null);
    cache.put(kept, run(1, 2));
    cache.put(runKey(ARN, "s2", null), run(3, 3));
    expect(cache.size).toEqual({ runs: 1, bytes: 2000 });
    expect(ids(cache.take(kept))).toEqual(["e1", "e2"]);
  });

  it("clear drops everything", () => {
    const cache = new StreamRecordCache(10_000, 60_000, new FakeClock());
    cache.put(runKey(ARN, "s1", null), run(1, 2));
    cache.clear();
    expect(cache.size).toEqual({ runs: 0, bytes: 0 });
    expect(cache.take(runKey(ARN, "s1", null))).toBeUndefined();
  });
});
