import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readTokenFile } from "./token-file.js";

describe("readTokenFile", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "token-file-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const tokenFile = (text: string, mode: number) => {
    const path = join(dir, "token");
    writeFileSync(path, text);
    chmodSync(path, mode);
    return path;
  };

  it("reads and trims a private file", () => {
    expect(readTokenFile(tokenFile("  s3cret-token\n", 0o600))).toBe("s3cret-token");
    expect(readTokenFile(tokenFile("s3cret-token", 0o400))).toBe("s3cret-token");
  });

  it.each([0o644, 0o640, 0o604, 0o620, 0o602])("refuses a file with mode %o, naming the fix", (mode) => {
    const path = tokenFile("s3cret-token", mode);
    let message = "";
    try {
      readTokenFile(path);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(`The token file ${path} has mode 0${mode.toString(8)}`);
    expect(message).toContain(`chmod 600 ${path}`);
    expect(message).not.toContain("s3cret-token");
  });

  it("refuses an empty file and a missing one", () => {
    expect(() => readTokenFile(tokenFile(" \n", 0o600))).toThrow(/is empty/);
    expect(() => readTokenFile(join(dir, "absent"))).toThrow(/Cannot read the token file .*absent/);
  });
});
