/**
 * Reads whole columns of a record batch as plain values (the representation `readValue`
 * gives, see values.ts), straight from the Arrow buffers.
 *
 * `readValue` goes through arrow-js's `get` visitor per cell: a TextDecoder call per
 * string and proxy objects per map and struct, which made it the largest cost of a write.
 * Here each chunk's buffers are bound once and every row is read with plain indexing.
 * Types without a reader here (unsigned 64-bit, half floats, intervals, ...) fall back to
 * `readValue`.
 *
 * arrow-js slices fixed-width values and offsets buffers with the data (so row `i` of a
 * chunk is at index `i` in them) but not validity bitmaps and boolean values, which are
 * read at bit `data.offset + i`.
 */
import { type Data, type DataType, DateUnit, type Field, TimeUnit, Type, Vector } from "apache-arrow";
import { DecimalValue, readValue, wordsToBigInt, type PlainValue } from "./values.js";

/** Reads row `i` (of the chunk or column it was bound to). */
export type RowReader = (i: number) => PlainValue;

/** Every value of `vector`, in row order. */
export function readColumn(vector: Vector): PlainValue[] {
  const out = new Array<PlainValue>(vector.length);
  let base = 0;
  for (const data of vector.data) {
    const read = bindReader(data);
    for (let i = 0; i < data.length; i++) out[base + i] = read(i);
    base += data.length;
  }
  return out;
}

/**
 * Row `i` of `vector` on demand: for callers that visit each row once and should not hold
 * a whole column of values (a writer converting row by row as it sends).
 */
export function columnReader(vector: Vector): RowReader {
  if (vector.data.length === 1) return bindReader(vector.data[0]!);
  const values = readColumn(vector);
  return (i) => values[i]!;
}

/**
 * The first row of `vector` that is null or, with `orEmpty`, an empty string or binary value;
 * -1 if none. Read from the validity bitmaps and offsets, without decoding any value.
 */
export function firstNullOrEmpty(vector: Vector, orEmpty: boolean): number {
  let base = 0;
  for (const data of vector.data) {
    const valid = validityOf(data);
    const offsets = orEmpty ? (data.valueOffsets as Int32Array | BigInt64Array | undefined) : undefined;
    if (valid || offsets) {
      for (let i = 0; i < data.length; i++) {
        if (valid && !valid(i)) return base + i;
        if (offsets && offsets[i] === offsets[i + 1]) return base + i;
      }
    }
    base += data.length;
  }
  return -1;
}

/** A reader of the values, or undefined where every value is valid (no null check needed). */
export function validityOf(data: Data): ((i: number) => boolean) | undefined {
  const bitmap = data.nullBitmap;
  if (data.typeId === Type.Null) return () => false;
  if (!bitmap || bitmap.length === 0 || data.nullCount === 0) return undefined;
  const offset = data.offset;
  return (i) => ((bitmap[(offset + i) >> 3]! >> ((offset + i) & 7)) & 1) === 1;
}

function withNulls(data: Data, read: RowReader): RowReader {
  const valid = validityOf(data);
  return valid ? (i) => (valid(i) ? read(i) : null) : read;
}

const TWO_POW_32 = 4_294_967_296;
/** 2^21: high words below this keep a 64-bit value within a double's 53 exact bits. */
const SAFE_HIGH_WORD = 0x20_0000;

/** A Decimal128 value from its four words; plain numbers for values that fit 53 bits. */
function decimal128(words: Uint32Array, at: number): bigint {
  const high = words[at + 1]! | 0;
  const top = words[at + 2]! | words[at + 3]!;
  const extension = words[at + 2]! & words[at + 3]!;
  if ((top === 0 && high >= 0 && high < SAFE_HIGH_WORD) || (extension === 0xffff_ffff && high < 0 && high >= -SAFE_HIGH_WORD)) {
    return BigInt(high * TWO_POW_32 + words[at]!);
  }
  return wordsToBigInt(words.subarray(at, at + 4));
}

function bindReader(data: Data): RowReader {
  const type: DataType = data.type;
  switch (type.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8: {
      const values = data.values as Uint8Array;
      const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
      const offsets = data.valueOffsets as Int32Array | BigInt64Array;
      if (offsets instanceof Int32Array) return withNulls(data, (i) => bytes.toString("utf8", offsets[i]!, offsets[i + 1]!));
      return withNulls(data, (i) => bytes.toString("utf8", Number(offsets[i]!), Number(offsets[i + 1]!)));
    }
    case Type.Binary:
    case Type.LargeBinary: {
      const values = data.values as Uint8Array;
      const offsets = data.valueOffsets as Int32Array | BigInt64Array;
      return withNulls(data, (i) => values.subarray(Number(offsets[i]!), Number(offsets[i + 1]!)));
    }
    case Type.FixedSizeBinary: {
      const values = data.values as Uint8Array;
      const width = (type as DataType & { byteWidth: number }).byteWidth;
      return withNulls(data, (i) => values.subarray(i * width, (i + 1) * width));
    }
    case Type.Int: {
      const values = data.values as ArrayLike<number | bigint>;
      if ((type as DataType & { bitWidth: number }).bitWidth === 64) return withNulls(data, (i) => BigInt(values[i]!));
      return withNulls(data, (i) => values[i] as number);
    }
    case Type.Float: {
      if ((type as DataType & { precision: number }).precision === 0) break; // half floats: arrow-js decodes them
      const values = data.values as Float32Array | Float64Array;
      return withNulls(data, (i) => values[i]!);
    }
    case Type.Bool: {
      const values = data.values as Uint8Array;
      const offset = data.offset;
      return withNulls(data, (i) => ((values[(offset + i) >> 3]! >> ((offset + i) & 7)) & 1) === 1);
    }
    case Type.Decimal: {
      const words = data.values as Uint32Array;
      const { scale, bitWidth } = type as DataType & { scale: number; bitWidth: number };
      const stride = bitWidth / 32;
      if (stride === 4) return withNulls(data, (i) => new DecimalValue(decimal128(words, i * 4), scale));
      return withNulls(data, (i) => new DecimalValue(wordsToBigInt(words.subarray(i * stride, (i + 1) * stride)), scale));
    }
    case Type.Date: {
      if ((type as DataType & { unit: DateUnit }).unit !== DateUnit.DAY) break;
      const days = data.values as Int32Array;
      return withNulls(data, (i) => days[i]!);
    }
    case Type.Timestamp: {
      if ((type as DataType & { unit: TimeUnit }).unit !== TimeUnit.MICROSECOND) break;
      const micros = data.values as BigInt64Array;
      return withNulls(data, (i) => micros[i]!);
    }
    case Type.List: {
      const offsets = data.valueOffsets as Int32Array;
      const element = bindReader(data.children[0]!);
      return withNulls(data, (i) => {
        const items: PlainValue[] = [];
        for (let j = offsets[i]!; j < offsets[i + 1]!; j++) items.push(element(j));
        return items;
      });
    }
    case Type.Map: {
      const offsets = data.valueOffsets as Int32Array;
      const entries = data.children[0]!;
      const key = bindReader(entries.children[0]!);
      const value = bindReader(entries.children[1]!);
      return withNulls(data, (i) => {
        const pairs: Array<[PlainValue, PlainValue]> = [];
        for (let j = offsets[i]!; j < offsets[i + 1]!; j++) pairs.push([key(j), value(j)]);
        return pairs;
      });
    }
    case Type.Struct: {
      const names = type.children.map((f: Field) => f.name);
      const fields = data.children.map(bindReader);
      return withNulls(data, (i) => {
        const row: { [key: string]: PlainValue } = {};
        for (let f = 0; f < fields.length; f++) row[names[f]!] = fields[f]!(i);
        return row;
      });
    }
    case Type.Null:
      return () => null;
  }
  const vector = new Vector([data]);
  return (i) => readValue(vector, i);
}
