/**
 * The service's bearer token from a file, so that it never appears on a command line
 * (`ps` shows every process's arguments to every local user).
 */
import { readFileSync, statSync } from "node:fs";

export function readTokenFile(path: string): string {
  let mode: number;
  let text: string;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`Cannot read the token file ${path}: ${error instanceof Error ? error.message : String(error)}.`);
  }
  if ((mode & 0o077) !== 0) {
    throw new Error(
      `The token file ${path} has mode ${(mode & 0o777).toString(8).padStart(4, "0")}: group or others can read or change it. ` +
        `Run \`chmod 600 ${path}\` (a Kubernetes secret volume: defaultMode 0400), or pass the token in the SPARK_CONDUIT_TOKEN environment variable.`,
    );
  }
  const token = text.trim();
  if (!token) throw new Error(`The token file ${path} is empty.`);
  return token;
}
