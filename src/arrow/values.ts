/**
 * Plain JavaScript values for Arrow data, both directions. Backends convert between
 * these and their database's values; they never touch Arrow buffers themselves
 * (batch-builder.ts writes plain values into batches, column-reader.ts reads them out).
 *
 * The representation is fixed per Arrow type (the field's type says which applies):
 *   Utf8/LargeUtf8 -> string        Int8/16/32, Uint8/16/32 -> number   Int64/Uint64 -> bigint
 *   Float16/32/64 -> number         Decimal -> DecimalValue             Bool -> boolean
 *   Binary/LargeBinary/FixedSizeBinary -> Uint8Array
 *   Date -> number (days since epoch)  Timestamp (any unit) -> bigint (microseconds since epoch, UTC)
 *   List/LargeList/FixedSizeList -> PlainValue[]   Map -> Array<[key, value]>
 *   Struct -> { [field]: PlainValue }               null -> null
 */
import { DataType, Field, type Vector, Type, Struct } from "apache-arrow";

export type PlainValue =
  | null
  | string
  | number
  | bigint
  | boolean
  | Uint8Array
  | DecimalValue
  | PlainValue[]
  | Array<[PlainValue, PlainValue]>
  | { [key: string]: PlainValue };

const POWERS_OF_TEN: bigint[] = [];

/** 10^n as a bigint, cached (rescaling every value of a column uses the same few). */
export function powerOfTen(n: number): bigint {
  return (POWERS_OF_TEN[n] ??= 10n ** BigInt(n));
}

/** An exact decimal: unscaled integer and scale, as Arrow and Spark store it. */
export class DecimalValue {
  constructor(
    readonly unscaled: bigint,
    readonly scale: number,
  ) {}

  /** Parses a decimal literal exactly ("-12.3400", "1e3"); throws on anything else. */
  static parse(text: string, scale?: number): DecimalValue {
    const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
    if (!match || (match[2] === "" && (match[3] ?? "") === "")) throw new RangeError(`not a decimal number: ${text}`);
    const sign = match[1] === "-" ? -1n : 1n;
    const intDigits = match[2] ?? "";
    const fracDigits = match[3] ?? "";
    const exponent = Number(match[4] ?? "0");
    let unscaled = BigInt((intDigits + fracDigits).replace(/^0+(?=\d)/, "") || "0") * sign;
    let currentScale = fracDigits.length - exponent;
    if (currentScale < 0) {
      unscaled *= 10n ** BigInt(-currentScale);
      currentScale = 0;
    }
    const value = new DecimalValue(unscaled, currentScale);
    return scale === undefined ? value : value.rescale(scale);
  }

  /** Same value at another scale; throws if digits would be lost. */
  rescale(scale: number): DecimalValue {
    if (scale === this.scale) return this;
    if (scale > this.scale) return new DecimalValue(this.unscaled * powerOfTen(scale - this.scale), scale);
    const factor = powerOfTen(this.scale - scale);
    if (this.unscaled % factor !== 0n) throw new RangeError(`${this.toString()} has more than ${scale} decimal places`);
    return new DecimalValue(this.unscaled / factor, scale);
  }

  /** Number of significant digits of the unscaled value. */
  digits(): number {
    const abs = this.unscaled < 0n ? -this.unscaled : this.unscaled;
    return abs === 0n ? 1 : abs.toString().length;
  }

  toString(): string {
    const negative = this.unscaled < 0n;
    const digits = (negative ? -this.unscaled : this.unscaled).toString();
    if (this.scale <= 0) return (negative ? "-" : "") + digits + "0".repeat(-this.scale);
    const padded = digits.padStart(this.scale + 1, "0");
    const intPart = padded.slice(0, padded.length - this.scale);
    const fracPart = padded.slice(padded.length - this.scale);
    return `${negative ? "-" : ""}${intPart}.${fracPart}`;
  }

  /** Shortest plain text without trailing fractional zeros ("1.50" -> "1.5", "2.00" -> "2"). */
  toNormalizedString(): string {
    const text = this.toString();
    return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
  }
}

export const MICROS_PER_MILLI = 1000;
export const MILLIS_PER_DAY = 86_400_000;

/** Reads row `index` of a vector as a plain value. */
export function readValue(vector: Vector, index: number): PlainValue {
  if (!vector.isValid(index)) return null;
  return normalize(vector.type, vector.get(index));
}

/** Converts what arrow-js `get` returns into the plain representation for `type`. */
function normalize(type: DataType, raw: unknown): PlainValue {
  if (raw === null || raw === undefined) return null;
  switch (type.typeId) {
    case Type.Decimal: {
      const decimalType = type as DataType<Type.Decimal> & { scale: number; bitWidth: number };
      return new DecimalValue(wordsToBigInt(raw as Uint32Array), decimalType.scale);
    }
    case Type.Timestamp:
      // arrow-js returns epoch milliseconds as a float carrying sub-millisecond digits;
      // this is exact for microseconds for any date before the year 2255.
      return BigInt(Math.round((raw as number) * MICROS_PER_MILLI));
    case Type.Date:
      return Math.floor((raw as number) / MILLIS_PER_DAY);
    case Type.Int: {
      const intType = type as DataType<Type.Int> & { bitWidth: number };
      return intType.bitWidth === 64 ? BigInt(raw as bigint) : (raw as number);
    }
    case Type.List:
    case Type.FixedSizeList: {
      const child = type.children[0]!.type;
      const out: PlainValue[] = [];
      for (const item of raw as Iterable<unknown>) out.push(normalize(child, item));
      return out;
    }
    case Type.Map: {
      const entries = type.children[0]!.type as Struct;
      const keyType = entries.children[0]!.type;
      const valueType = entries.children[1]!.type;
      const out: Array<[PlainValue, PlainValue]> = [];
      for (const [key, value] of raw as Iterable<[unknown, unknown]>) out.push([normalize(keyType, key), normalize(valueType, value)]);
      return out;
    }
    case Type.Struct: {
      const row = raw as Record<string, unknown>;
      const out: { [key: string]: PlainValue } = {};
      for (const child of type.children) out[child.name] = normalize(child.type, row[child.name]);
      return out;
    }
    case Type.Binary:
    case Type.LargeBinary:
    case Type.FixedSizeBinary:
      return raw as Uint8Array;
    default:
      return raw as PlainValue;
  }
}

/** Two's-complement little-endian 32-bit words (Arrow decimal storage) to bigint. */
export function wordsToBigInt(words: Uint32Array): bigint {
  let result = 0n;
  for (let i = words.length - 1; i >= 0; i--) result = (result << 32n) | BigInt(words[i]!);
  const bits = BigInt(words.length * 32);
  if (words.length > 0 && words[words.length - 1]! & 0x8000_0000) result -= 1n << bits;
  return result;
}

/** bigint to two's-complement little-endian words (`count` words). */
export function bigIntToWords(value: bigint, count: number): Uint32Array {
  const words = new Uint32Array(count);
  let v = BigInt.asUintN(count * 32, value);
  for (let i = 0; i < count; i++) {
    words[i] = Number(v & 0xffff_ffffn);
    v >>= 32n;
  }
  return words;
}

/** Human-readable Spark-style type name, for error messages. */
export function describeType(type: DataType): string {
  switch (type.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
      return "string";
    case Type.Int: {
      const bits = (type as DataType<Type.Int> & { bitWidth: number }).bitWidth;
      return bits === 8 ? "tinyint" : bits === 16 ? "smallint" : bits === 32 ? "int" : "bigint";
    }
    case Type.Float: {
      const precision = (type as DataType<Type.Float> & { precision: number }).precision;
      return precision === 1 ? "float" : precision === 2 ? "double" : "half float";
    }
    case Type.Decimal: {
      const d = type as DataType<Type.Decimal> & { precision: number; scale: number };
      return `decimal(${d.precision},${d.scale})`;
    }
    case Type.Bool:
      return "boolean";
    case Type.Binary:
    case Type.LargeBinary:
    case Type.FixedSizeBinary:
      return "binary";
    case Type.Date:
      return "date";
    case Type.Timestamp:
      return "timestamp";
    case Type.List:
    case Type.FixedSizeList:
      return `array<${describeType(type.children[0]!.type)}>`;
    case Type.Map: {
      const entries = type.children[0]!.type as Struct;
      return `map<${describeType(entries.children[0]!.type)},${describeType(entries.children[1]!.type)}>`;
    }
    case Type.Struct:
      return `struct<${type.children.map((c: Field) => `${c.name}:${describeType(c.type)}`).join(",")}>`;
    case Type.Null:
      return "void";
    default:
      return String(type);
  }
}
