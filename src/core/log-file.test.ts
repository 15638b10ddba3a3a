import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openLogFile } from "./log-file.js";

describe("openLogFile", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "log-file-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const line = (i: number) => `{"n":"${String(i).padStart(2, "0")}","p":"${"x".repeat(82)}"}`; // 100 bytes with its newline

  it("keeps every file under the cap, rotating into FILE.1 and replacing the older copy", () => {
    const path = join(dir, "service.log");
    const log = openLogFile(path, 1024);
    for (let i = 0; i < 100; i++) log.write(line(i));
    log.close();
    // 10 lines fit in 1024 bytes: 100 lines rotate 9 times, and only the last two files remain.
    const current = readFileSync(path, "utf8").trim().split("\n");
    const previous = readFileSync(`${path}.1`, "utf8").trim().split("\n");
    expect(current.map((l) => Number(JSON.parse(l).n))).toEqual([90, 91, 92, 93, 94, 95, 96, 97, 98, 99]);
    expect(previous.map((l) => Number(JSON.parse(l).n))).toEqual([80, 81, 82, 83, 84, 85, 86, 87, 88, 89]);
    expect(statSync(path).size).toBeLessThanOrEqual(1024);
    expect(statSync(`${path}.1`).size).toBeLessThanOrEqual(1024);
    expect(existsSync(`${path}.2`)).toBe(false);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it("counts what an earlier run left in the file", () => {
    const path = join(dir, "service.log");
    writeFileSync(path, "a".repeat(1000) + "\n");
    const log = openLogFile(path, 1024);
    log.write(line(1));
    log.close();
    expect(readFileSync(path, "utf8")).toBe(line(1) + "\n");
    expect(readFileSync(`${path}.1`, "utf8")).toBe("a".repeat(1000) + "\n");
  });

  it("cuts a single line longer than the cap", () => {
    const path = join(dir, "service.log");
    const log = openLogFile(path, 1024);
    log.write("y".repeat(5000));
    log.write("after");
    log.close();
    expect(statSync(`${path}.1`).size).toBeLessThanOrEqual(1024);
    expect(readFileSync(`${path}.1`, "utf8")).toMatch(/^y+ \[truncated\]\n$/);
    expect(readFileSync(path, "utf8")).toBe("after\n");
  });

  it("does not follow a symlink planted at the log path", () => {
    const target = join(dir, "elsewhere");
    writeFileSync(target, "");
    symlinkSync(target, join(dir, "service.log"));
    expect(() => openLogFile(join(dir, "service.log"))).toThrow(/ELOOP/);
    expect(readFileSync(target, "utf8")).toBe("");
  });

  it("refuses a cap too small to hold a log line", () => {
    expect(() => openLogFile(join(dir, "service.log"), 10)).toThrow(/at least 1024 bytes/);
  });
});
