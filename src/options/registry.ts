/**
 * Options are declared once, here-shaped: name, type, default, description. Parsing is
 * strict (booleans are "true"/"false" only, integers are integers, enums are listed),
 * unknown keys are rejected with a did-you-mean, and the README's options tables are
 * rendered from the same declarations.
 */
import { closestMatch } from "../core/did-you-mean.js";
import { clip, invalidArgument } from "../core/errors.js";

/** Which operation an option is for. Options of the other direction are accepted and ignored. */
/** "stream": streaming reads only (`spark.readStream`); "read" options apply to both kinds of read. */
export type OptionScope = "read" | "write" | "both" | "stream";

export interface OptionSpec<T> {
  readonly kind: "string" | "integer" | "boolean" | "enum" | "list";
  readonly description: string;
  readonly scope: OptionScope;
  /** Required for operations in `scope`. */
  readonly required: boolean;
  readonly defaultValue: T | undefined;
  /** Shown in the docs instead of `defaultValue` (e.g. "LOCAL_QUORUM for writes"). */
  readonly defaultText?: string;
  /** Never echoed in errors or logs. */
  readonly secret: boolean;
  /** Consumed by the Python shim or by Spark; the service accepts and ignores them. */
  readonly clientSide: boolean;
  readonly values?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  parse(raw: string, name: string): T;
}

interface CommonInit<T> {
  description: string;
  scope?: OptionScope;
  required?: boolean;
  default?: T;
  defaultText?: string;
  secret?: boolean;
  clientSide?: boolean;
}

function spec<T>(kind: OptionSpec<T>["kind"], init: CommonInit<T>, parse: (raw: string, name: string) => T, extra: Partial<OptionSpec<T>> = {}): OptionSpec<T> {
  return {
    kind,
    description: init.description,
    scope: init.scope ?? "both",
    required: init.required ?? false,
    defaultValue: init.default,
    defaultText: init.defaultText,
    secret: init.secret ?? false,
    clientSide: init.clientSide ?? false,
    parse,
    ...extra,
  };
}

function badValue(name: string, raw: string, expected: string, secret = false): never {
  const shown = secret ? "(hidden)" : `'${clip(raw)}'`;
  throw invalidArgument("OPTION_INVALID_VALUE", `Option '${name}' has the invalid value ${shown}: expected ${expected}.`, {
    option: name,
    value: secret ? "" : clip(raw),
    expected,
  });
}

export function stringOption(init: CommonInit<string> & { allowEmpty?: boolean }): OptionSpec<string> {
  return spec("string", init, (raw, name) => {
    if (raw.trim() === "" && !init.allowEmpty) badValue(name, raw, "a non-empty string", init.secret);
    return raw;
  });
}

export function integerOption(init: CommonInit<number> & { min?: number; max?: number }): OptionSpec<number> {
  const min = init.min ?? Number.MIN_SAFE_INTEGER;
  const max = init.max ?? Number.MAX_SAFE_INTEGER;
  const expected = init.max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  return spec(
    "integer",
    init,
    (raw, name) => {
      const text = raw.trim();
      if (!/^[+-]?\d+$/.test(text)) badValue(name, raw, expected);
      const value = Number(text);
      if (!Number.isSafeInteger(value) || value < min || value > max) badValue(name, raw, expected);
      return value;
    },
    { min, max: init.max },
  );
}

export function booleanOption(init: CommonInit<boolean>): OptionSpec<boolean> {
  return spec("boolean", init, (raw, name) => {
    const text = raw.trim().toLowerCase();
    if (text === "true") return true;
    if (text === "false") return false;
    return badValue(name, raw, "'true' or 'false'");
  });
}

export function enumOption<V extends string>(init: CommonInit<V> & { values: readonly V[] }): OptionSpec<V> {
  return spec(
    "enum",
    init,
    (raw, name) => {
      const text = raw.trim().toUpperCase();
      const found = init.values.find((v) => v.toUpperCase() === text);
      if (found === undefined) {
        const suggestion = closestMatch(text, init.values);
        badValue(name, raw, `one of ${init.values.join(", ")}${suggestion ? ` (did you mean '${suggestion}'?)` : ""}`);
      }
      return found;
    },
    { values: init.values },
  );
}

/** Comma-separated list of non-empty strings. */
export function listOption(init: CommonInit<string[]>): OptionSpec<string[]> {
  return spec("list", init, (raw, name) => {
    const items = raw
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    if (items.length === 0) badValue(name, raw, "a comma-separated list");
    return items;
  });
}

export type OptionSpecs = Record<string, OptionSpec<unknown>>;

/** The parsed options: declared options with a default are always present. */
export type ParsedOptions<S extends OptionSpecs> = {
  [K in keyof S]: S[K] extends OptionSpec<infer T> ? (S[K]["defaultValue"] extends undefined ? T | undefined : T) : never;
};

export type Operation = "read" | "write";

export class OptionRegistry<S extends OptionSpecs> {
  constructor(
    readonly format: string,
    readonly specs: S,
  ) {}

  /**
   * Parses Spark's option map (keys case-insensitive). Throws ConduitError naming the
   * option on an unknown key (with a suggestion), a bad value or a missing required one.
   */
  parse(raw: Record<string, string>, operation: Operation): ParsedOptions<S> {
    const result: Record<string, unknown> = {};
    const seen = new Set<string>();
    for (const [rawKey, rawValue] of Object.entries(raw)) {
      const key = rawKey.toLowerCase();
      const optionSpec = this.specs[key];
      if (!optionSpec) {
        const suggestion = closestMatch(key, Object.keys(this.specs));
        throw invalidArgument(
          "OPTION_UNKNOWN",
          `Unknown option '${clip(rawKey)}' for format '${this.format}'.${suggestion ? ` Did you mean '${suggestion}'?` : ""} Known options: ${Object.keys(this.specs)
            .filter((k) => !this.specs[k]!.clientSide)
            .join(", ")}.`,
          { option: clip(rawKey), format: this.format, suggestion: suggestion ?? "" },
        );
      }
      seen.add(key);
      if (optionSpec.clientSide) continue;
      result[key] = optionSpec.parse(String(rawValue), key);
    }
    for (const [key, optionSpec] of Object.entries(this.specs)) {
      if (seen.has(key)) continue;
      const applies = optionSpec.scope === "both" || optionSpec.scope === operation;
      if (optionSpec.required && applies) {
        throw invalidArgument("OPTION_REQUIRED", `Option '${key}' is required to ${operation} format '${this.format}': ${optionSpec.description}`, {
          option: key,
          format: this.format,
        });
      }
      if (optionSpec.defaultValue !== undefined) result[key] = optionSpec.defaultValue;
    }
    return result as ParsedOptions<S>;
  }

  /** Option names whose values must never be logged. */
  secretNames(): Set<string> {
    return new Set(Object.entries(this.specs).filter(([, s]) => s.secret).map(([k]) => k));
  }

  /** The options reference as a Markdown table (the README embeds this output). */
  toMarkdown(include: (spec: OptionSpec<unknown>) => boolean = () => true): string {
    const lines = ["| Option | For | Type | Default | Required | Description |", "|---|---|---|---|---|---|"];
    for (const [name, s] of Object.entries(this.specs)) {
      if (!include(s)) continue;
      const type = s.kind === "enum" ? s.values!.join(" \\| ") : s.kind;
      const defaultText = s.defaultText ?? (s.defaultValue === undefined ? "-" : `\`${String(s.defaultValue)}\``);
      const scope = s.scope === "both" ? "read, write" : s.scope;
      lines.push(`| \`${name}\` | ${scope} | ${type} | ${defaultText} | ${s.required ? "yes" : "no"} | ${s.description.replace(/\|/g, "\\|")} |`);
    }
    return lines.join("\n");
  }
}
