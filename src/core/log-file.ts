/**
 * A size-capped log sink: the service may run for weeks, and a log under /tmp that only
 * grows would fill the disk. At most `maxBytes` in the current file plus one rotated copy.
 */
import { closeSync, constants, fstatSync, openSync, renameSync, writeSync } from "node:fs";

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;

export interface LogFile {
  /** Appends one line (a newline is added). Never throws: a full disk must not stop the service. */
  write(line: string): void;
  close(): void;
}

// O_NOFOLLOW: a symlink planted at the log path is not followed into someone else's file.
const APPEND = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW;

/** Opens `path` for appending; at `maxBytes` it becomes `path.1` (replacing the older one). */
export function openLogFile(path: string, maxBytes: number = DEFAULT_LOG_MAX_BYTES): LogFile {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024) throw new Error(`The log size cap must be an integer of at least 1024 bytes, not ${maxBytes}.`);
  let fd = openSync(path, APPEND, 0o600);
  let size = fstatSync(fd).size;
  let failed = false;

  const rotate = () => {
    closeSync(fd);
    fd = -1;
    renameSync(path, `${path}.1`);
    fd = openSync(path, APPEND, 0o600);
    size = 0;
  };

  return {
    write(line) {
      let data = Buffer.from(line + "\n", "utf8");
      // A single line larger than the cap is cut so that the cap holds without exception.
      if (data.length > maxBytes) data = Buffer.concat([data.subarray(0, maxBytes - 16), Buffer.from(" [truncated]\n")]);
      try {
        if (fd < 0) fd = openSync(path, APPEND, 0o600);
        if (size > 0 && size + data.length > maxBytes) rotate();
        writeSync(fd, data);
        size += data.length;
        failed = false;
      } catch (error) {
        // Report once per run of failures on stderr (the start-up log), then keep trying.
        if (!failed) process.stderr.write(`spark-conduit: cannot write the log file ${path}: ${error instanceof Error ? error.message : String(error)}\n`);
        failed = true;
      }
    },
    close() {
      if (fd >= 0) closeSync(fd);
      fd = -1;
    },
  };
}
