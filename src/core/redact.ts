/**
 * The one redaction of the service. Secrets reach text that leaves the process in three
 * ways: as request options, echoed inside a database's or SDK's error message, and inside
 * causes and stacks. Everything that leaves does so through two exits, the logger and the
 * gRPC status (transport/status.ts), and both pass it through here, so no code path has to
 * remember to redact.
 */

export const REDACTED = "***";

/**
 * Names whose values are secrets. The option registries flag their secret options
 * (`secret: true`); redact.test.ts checks that this pattern matches exactly those, so code
 * without a registry at hand (the logger, the status) knows them too.
 */
const SECRET_NAME = /secret|password|passw(?:or)?d|pwd|token|credential|authorization|private[_-]?key|api[_-]?key|ssl[_-]?key|cookie/i;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** The values of a request's secret options: scrubbed wherever they appear, e.g. in a driver message that echoes them. */
export function secretValuesOf(options: Readonly<Record<string, unknown>> | undefined): string[] {
  if (!options) return [];
  const values = new Set<string>();
  for (const [key, value] of Object.entries(options)) {
    if (!isSecretName(key) || typeof value !== "string" || value === "") continue;
    values.add(value);
    // The same value as a URL or a JSON string would show it.
    values.add(encodeURIComponent(value));
    values.add(JSON.stringify(value).slice(1, -1));
  }
  // Longest first, so a secret containing another is removed whole.
  return [...values].sort((a, b) => b.length - a.length);
}

// Bounded, so that a long run of word characters (a hex dump in a message) costs linear time.
const KEY_CHARS = "[A-Za-z0-9_.-]{0,64}";
const SECRET_WORD = "(?:secret|password|passw(?:or)?d|pwd|token|credential|authorization|private[_-]?key|api[_-]?key|ssl[_-]?key|cookie)";
// key=value, key: value, "key": "value"; an auth scheme word before the value goes with it.
const KEY_VALUE = new RegExp(
  `(${KEY_CHARS}${SECRET_WORD}${KEY_CHARS})(["']?[ \\t]*[=:][ \\t]*)((?:Bearer|Basic|bearer|basic)[ \\t]+)?("[^"]*"|'[^']*'|[^\\s,;&"'<>)}\\]]+)`,
  "gi",
);

const SHAPES: Array<[RegExp, (match: string) => string]> = [
  // HTTP auth schemes as they appear in headers (capitalised, so prose like "a bearer token" stays).
  [/\b(Bearer|Basic)[ \t]+[A-Za-z0-9._~+/=-]{4,}/g, (m) => `${m.split(/[ \t]/)[0]!} ${REDACTED}`],
  // Credentials inside a URL: scheme://user:password@host.
  [/\b([a-z][a-z0-9+.-]{0,30}:\/\/[^\s/:@]{0,256}:)[^\s/@]{1,256}@/gi, (m) => `${m.slice(0, m.indexOf(":", m.indexOf("://") + 3) + 1)}${REDACTED}@`],
  // AWS access key ids (long-term AKIA, temporary ASIA).
  [/\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b/g, () => REDACTED],
  // 40 base64 characters with upper, lower and digits: the shape of an AWS secret access key.
  [/(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g, (m) => (/[A-Z]/.test(m) && /[a-z]/.test(m) && /[0-9]/.test(m) ? REDACTED : m)],
  // Long base64 runs (session tokens, signed blobs): nothing legitimate in a message looks like this.
  [/[A-Za-z0-9/+]{100,}={0,2}/g, (m) => (/[A-Z]/.test(m) && /[a-z]/.test(m) && /[0-9]/.test(m) ? REDACTED : m)],
];

const SOURCE_FILE = /\.[cm]?[jt]sx?$/i;

/**
 * A secret value as a whole token: not inside a longer word, so the password "cassandra"
 * is removed from "user cassandra" but the format name "pycassandra" stays readable.
 */
function wholeValue(secret: string): RegExp {
  const escaped = secret.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const before = /^[A-Za-z0-9]/.test(secret) ? "(?<![A-Za-z0-9])" : "";
  const after = /[A-Za-z0-9]$/.test(secret) ? "(?![A-Za-z0-9])" : "";
  return new RegExp(`${before}${escaped}${after}`, "g");
}

/**
 * Removes secrets from text: the given secret values wherever they appear, values of
 * secret-named keys (`password=...`, `"aws_session_token": "..."`), auth header values,
 * AWS key ids and secret-shaped strings. `keyValues: false` skips the key=value rule, for
 * messages we wrote ourselves ("needs a bearer token: set ..."), whose foreign parts the
 * backends already redacted.
 */
export function redactText(text: string, secrets: readonly string[] = [], { keyValues = true }: { keyValues?: boolean } = {}): string {
  let out = text;
  for (const secret of secrets) if (secret !== "" && out.includes(secret)) out = out.replace(wholeValue(secret), REDACTED);
  // `tokenizer.js:12` in a stack is a file and line, not a key and value.
  if (keyValues) out = out.replace(KEY_VALUE, (match: string, key: string, sep: string) => (SOURCE_FILE.test(key) ? match : `${key}${sep}${REDACTED}`));
  for (const [pattern, replace] of SHAPES) out = out.replace(pattern, replace);
  return out;
}

const MAX_DEPTH = 8;

/**
 * A redacted, JSON-safe copy of any value: strings pass through `redactText`, values under
 * secret-named keys become `***`, errors become { name, message, stack, cause } (their
 * stacks and causes are where secrets hide), bigints become strings. Cycles and depth are bounded.
 */
export function redact(value: unknown, secrets: readonly string[] = []): unknown {
  return walk(value, secrets, 0, new WeakSet());
}

function walk(value: unknown, secrets: readonly string[], depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === "string") return redactText(value, secrets);
  if (typeof value === "bigint") return value.toString();
  if (value === null || typeof value !== "object") return typeof value === "function" || typeof value === "symbol" ? String(value) : value;
  if (seen.has(value)) return "[circular]";
  if (depth >= MAX_DEPTH) return "[nested too deep]";
  seen.add(value);
  if (value instanceof Error) return walkError(value, secrets, depth, seen);
  if (value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((v) => walk(v, secrets, depth + 1, seen));
  if (value instanceof Map) return walk(Object.fromEntries(value), secrets, depth + 1, seen);
  if (value instanceof Set) return walk([...value], secrets, depth + 1, seen);
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) out[key] = hidesSecret(key, inner) ? REDACTED : walk(inner, secrets, depth + 1, seen);
  return out;
}

/** Numbers and flags under a secret-looking name (`nodeTokens: 3`, `tls: true`) are counts, not secrets. */
function hidesSecret(key: string, value: unknown): boolean {
  if (!isSecretName(key)) return false;
  return (typeof value === "string" && value !== "") || (typeof value === "object" && value !== null);
}

function walkError(error: Error, secrets: readonly string[], depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = { name: error.name, message: redactText(error.message, secrets) };
  // Drivers hang details off their errors (code, host, request info); keep them, redacted.
  for (const [key, inner] of Object.entries(error)) {
    if (key === "cause" || key === "stack" || key === "message") continue;
    out[key] = hidesSecret(key, inner) ? REDACTED : walk(inner, secrets, depth + 1, seen);
  }
  if (error.stack) out.stack = redactText(error.stack, secrets);
  if (error.cause !== undefined) out.cause = walk(error.cause, secrets, depth + 1, seen);
  return out;
}

/** An error, its cause chain and nested errors as one redacted text block, for a log line. */
export function describeError(error: unknown, secrets: readonly string[] = []): string | undefined {
  if (error === undefined) return undefined;
  const parts: string[] = [];
  const seen = new Set<unknown>();
  const visit = (e: unknown, prefix: string) => {
    if (seen.has(e) || parts.length >= 20) return;
    seen.add(e);
    if (e instanceof Error) {
      parts.push(`${prefix}${e.stack ?? `${e.name}: ${e.message}`}`);
      if (!e.stack?.includes(e.message)) parts.push(`${e.name}: ${e.message}`);
      const nested = (e as { errors?: unknown }).errors;
      if (Array.isArray(nested)) for (const inner of nested) visit(inner, "inner: ");
      if (e.cause !== undefined) visit(e.cause, "caused by: ");
    } else {
      let text: string;
      try {
        text = typeof e === "object" && e !== null ? JSON.stringify(redact(e, secrets)) : String(e);
      } catch {
        text = String(e);
      }
      parts.push(`${prefix}${text}`);
    }
  };
  visit(error, "");
  return redactText(parts.join("\n"), secrets);
}
