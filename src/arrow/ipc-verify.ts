/**
 * Bounds checks for Arrow IPC bytes from a client, run before arrow-js sees them.
 *
 * arrow-js trusts its input: the flatbuffers reader returns 0 for reads past the end
 * instead of failing, so a corrupted vector length (say 2^31 fields) makes it build
 * billions of objects until the process dies of heap exhaustion, and a table that refers
 * to itself makes it recurse forever. Fuzzing found both. This verifier walks each
 * message's flatbuffer the way arrow-js will (Message, Schema, Field, RecordBatch,
 * DictionaryBatch) and refuses offsets or vector lengths outside the message, nesting
 * deeper than MAX_DEPTH and more tables than the message could hold. After decoding,
 * `checkBatchBounds` refuses a batch whose declared row count its buffers cannot hold,
 * so a reader's work per batch stays proportional to the bytes received.
 */

/** Nesting of Spark types stays far below this. */
const MAX_DEPTH = 64;

/** Message header union (Message.fbs). */
const HEADER_SCHEMA = 1;
const HEADER_DICTIONARY_BATCH = 2;
const HEADER_RECORD_BATCH = 3;

/** Type union members with offset fields (Schema.fbs): Timestamp.timezone, Union.typeIds. */
const TYPE_TIMESTAMP = 10;
const TYPE_UNION = 14;
/** The last member of the Type union arrow-js 21 knows (ListView = 25, LargeListView = 26). */
const TYPE_LAST = 26;

class Walker {
  private readonly view: DataView;
  private tables = 0;
  private readonly maxTables: number;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Each table takes at least 4 bytes of its own: more visits means tables are shared or cyclic.
    this.maxTables = Math.max(16, bytes.length >> 2);
  }

  private fail(what: string): never {
    throw new Error(`corrupt IPC metadata: ${what}`);
  }

  private need(at: number, size: number, what: string) {
    if (!Number.isInteger(at) || at < 0 || size < 0 || at + size > this.bytes.length) this.fail(`${what} lies outside the message`);
  }

  /** The position of table `at`'s field `index`, or undefined when absent. */
  field(table: number, index: number, size: number, what: string): number | undefined {
    this.need(table, 4, what);
    const vtable = table - this.view.getInt32(table, true);
    this.need(vtable, 4, `${what} vtable`);
    const vtableSize = this.view.getUint16(vtable, true);
    const tableSize = this.view.getUint16(vtable + 2, true);
    if (vtableSize < 4 || vtableSize % 2 !== 0) this.fail(`${what} vtable size ${vtableSize}`);
    this.need(vtable, vtableSize, `${what} vtable`);
    this.need(table, tableSize, what);
    if (4 + 2 * index >= vtableSize) return undefined;
    const offset = this.view.getUint16(vtable + 4 + 2 * index, true);
    if (offset === 0) return undefined;
    if (offset + size > tableSize) this.fail(`field ${index} of ${what} lies outside its table`);
    return table + offset;
  }

  /** Follows the offset stored in field `index` of `table` (a table, vector or string). */
  target(table: number, index: number, what: string): number | undefined {
    const at = this.field(table, index, 4, what);
    if (at === undefined) return undefined;
    const to = at + this.view.getUint32(at, true);
    this.need(to, 4, what);
    return to;
  }

  table(at: number, depth: number, what: string) {
    if (++this.tables > this.maxTables) this.fail(`more tables than the message can hold (shared or cyclic) at ${what}`);
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} at ${what}`);
    this.field(at, 0, 0, what);
  }

  /** A vector's element count, checked against the bytes it needs. */
  vector(at: number | undefined, elementSize: number, what: string): number {
    if (at === undefined) return 0;
    const length = this.view.getUint32(at, true);
    this.need(at + 4, length * elementSize, `${what} (${length} elements)`);
    return length;
  }

  /** The tables of a vector of tables. */
  tablesOf(at: number | undefined, what: string): number[] {
    const length = this.vector(at, 4, what);
    const out: number[] = [];
    for (let i = 0; i < length; i++) {
      const slot = at! + 4 + 4 * i;
      const to = slot + this.view.getUint32(slot, true);
      this.need(to, 4, what);
      out.push(to);
    }
    return out;
  }

  string(table: number, index: number, what: string) {
    this.vector(this.target(table, index, what), 1, what);
  }

  byte(table: number, index: number, what: string): number {
    const at = this.field(table, index, 1, what);
    return at === undefined ? 0 : this.bytes[at]!;
  }

  int64(table: number, index: number, what: string): number {
    const at = this.field(table, index, 8, what);
    return at === undefined ? 0 : Number(this.view.getBigInt64(at, true));
  }

  keyValues(table: number, index: number, depth: number, what: string) {
    for (const kv of this.tablesOf(this.target(table, index, what), what)) {
      this.table(kv, depth, what);
      this.string(kv, 0, `${what} key`);
      this.string(kv, 1, `${what} value`);
    }
  }

  fieldTable(at: number, depth: number) {
    this.table(at, depth, "field");
    this.string(at, 0, "field name");
    const typeType = this.byte(at, 2, "field type");
    if (typeType > TYPE_LAST) this.fail(`unknown field type ${typeType}`);
    const type = this.target(at, 3, "field type");
    if (type !== undefined) {
      this.table(type, depth + 1, "field type");
      if (typeType === TYPE_TIMESTAMP) this.string(type, 1, "timestamp time zone");
      if (typeType === TYPE_UNION) this.vector(this.target(type, 1, "union type ids"), 4, "union type ids");
    }
    const dictionary = this.target(at, 4, "dictionary encoding");
    if (dictionary !== undefined) {
      this.table(dictionary, depth + 1, "dictionary encoding");
      const indexType = this.target(dictionary, 1, "dictionary index type");
      if (indexType !== undefined) this.table(indexType, depth + 2, "dictionary index type");
    }
    for (const child of this.tablesOf(this.target(at, 5, "field children"), "field children")) this.fieldTable(child, depth + 1);
    this.keyValues(at, 6, depth + 1, "field metadata");
  }

  recordBatch(at: number, depth: number) {
    this.table(at, depth, "record batch");
    if (this.int64(at, 0, "record batch length") < 0) this.fail("negative record batch length");
    this.vector(this.target(at, 1, "field nodes"), 16, "field nodes");
    this.vector(this.target(at, 2, "buffers"), 16, "buffers");
    const compression = this.target(at, 3, "compression");
    if (compression !== undefined) this.table(compression, depth + 1, "compression");
    this.vector(this.target(at, 4, "variadic buffer counts"), 8, "variadic buffer counts");
  }

  /** Verifies one Message flatbuffer; returns its body length. */
  message(): number {
    this.need(0, 4, "root offset");
    const root = this.view.getUint32(0, true);
    this.need(root, 4, "message");
    this.table(root, 0, "message");
    const headerType = this.byte(root, 1, "message header type");
    const header = this.target(root, 2, "message header");
    if (header === undefined) this.fail("a message without a header");
    if (headerType === HEADER_SCHEMA) {
      this.table(header, 1, "schema");
      for (const field of this.tablesOf(this.target(header, 1, "schema fields"), "schema fields")) this.fieldTable(field, 2);
      this.keyValues(header, 2, 2, "schema metadata");
      this.vector(this.target(header, 3, "schema features"), 8, "schema features");
    } else if (headerType === HEADER_RECORD_BATCH) {
      this.recordBatch(header, 1);
    } else if (headerType === HEADER_DICTIONARY_BATCH) {
      this.table(header, 1, "dictionary batch");
      const data = this.target(header, 1, "dictionary data");
      if (data !== undefined) this.recordBatch(data, 2);
    } else {
      this.fail(`message header type ${headerType} (only schemas, record batches and dictionaries are accepted)`);
    }
    this.keyValues(root, 4, 1, "message metadata");
    const bodyLength = this.int64(root, 3, "body length");
    if (bodyLength < 0) this.fail(`negative body length ${bodyLength}`);
    return bodyLength;
  }
}

/** Checks the framing of an IPC stream and every message's metadata; throws an Error naming the fault. */
export function verifyIpcStream(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  let messages = 0;
  while (at + 4 <= bytes.length) {
    let length = view.getInt32(at, true);
    at += 4;
    if (length === -1) {
      // Continuation marker, then the metadata length.
      if (at + 4 > bytes.length) throw new Error("truncated IPC stream: a message length is missing");
      length = view.getInt32(at, true);
      at += 4;
    }
    if (length === 0) return; // end of stream
    if (length < 0 || at + length > bytes.length) {
      throw new Error(`corrupt IPC stream: message ${messages} declares ${length} bytes of metadata, ${bytes.length - at} remain`);
    }
    const body = new Walker(bytes.subarray(at, at + length)).message();
    at += length;
    if (body > bytes.length - at) throw new Error(`corrupt IPC stream: message ${messages} declares a body of ${body} bytes, ${bytes.length - at} remain`);
    at += body;
    messages++;
  }
  if (at !== bytes.length) throw new Error("truncated IPC stream");
}

interface DataLike {
  typeId: number;
  length: number;
  offset: number;
  nullCount: number;
  stride: number;
  nullBitmap?: Uint8Array;
  values?: ArrayLike<unknown> & { byteLength: number; BYTES_PER_ELEMENT?: number };
  valueOffsets?: ArrayLike<number | bigint>;
  children: DataLike[];
  type: { typeId: number; children?: Array<{ name: string }> };
}

/** arrow-js Type ids (enum Type): values buffers hold `stride` elements per row. */
const FIXED_WIDTH = new Set([-1, 2, 3, 7, 8, 9, 10, 11, 15, 18]); // Dictionary (indices), Int, Float, Decimal, Date, Time, Timestamp, Interval, FixedSizeBinary, Duration
const NULL = 1;
const BOOL = 6;
const STRUCT = 13;
const FIXED_SIZE_LIST = 16;
const VARIABLE = new Set([4, 5, 19, 20]); // Binary, Utf8, LargeBinary, LargeUtf8: offsets into values
const LIST = new Set([12, 17, 21]); // List, Map, LargeList: offsets into one child

/** Offsets must rise and stay within the values: one decreasing offset makes a slice of 2^31 values. */
function checkOffsets(offsets: ArrayLike<number | bigint>, length: number, limit: number, path: string) {
  if (offsets instanceof Int32Array) {
    let previous = offsets[0]!;
    if (previous < 0) throw new Error(`column '${path}' has a negative offset`);
    for (let i = 1; i <= length; i++) {
      const next = offsets[i]!;
      if (next < previous) throw new Error(`column '${path}' has decreasing offsets at row ${i - 1}`);
      previous = next;
    }
    if (previous > limit) throw new Error(`column '${path}' has offsets up to ${previous} beyond its ${limit} values`);
    return;
  }
  let previous = Number(offsets[0]!);
  if (!(previous >= 0)) throw new Error(`column '${path}' has a negative offset`);
  for (let i = 1; i <= length; i++) {
    const next = Number(offsets[i]!);
    if (!(next >= previous)) throw new Error(`column '${path}' has decreasing offsets at row ${i - 1}`);
    previous = next;
  }
  if (previous > limit) throw new Error(`column '${path}' has offsets up to ${previous} beyond its ${limit} values`);
}

/**
 * Refuses a decoded column whose buffers are shorter than its declared length needs, so
 * no reader loops over rows that were never sent. arrow-js slices values and offsets
 * with the data (row i at index i) but not bitmaps (bit offset + i).
 */
function checkData(data: DataLike, path: string) {
  const { length, offset } = data;
  if (!Number.isSafeInteger(length) || length < 0 || !Number.isSafeInteger(offset) || offset < 0) throw new Error(`column '${path}' declares ${length} rows`);
  const bits = offset + length;
  if (data.nullCount !== 0 && data.nullBitmap && data.nullBitmap.length > 0 && data.nullBitmap.length * 8 < bits) {
    throw new Error(`column '${path}' declares ${length} rows but its validity bitmap holds ${data.nullBitmap.length * 8}`);
  }
  const values = data.values;
  const typeId = data.typeId;
  if (typeId === BOOL) {
    if (!values || values.byteLength * 8 < bits) throw new Error(`column '${path}' declares ${length} rows but its values hold ${(values?.byteLength ?? 0) * 8}`);
  } else if (VARIABLE.has(typeId) || LIST.has(typeId)) {
    const offsets = data.valueOffsets;
    if (!offsets || offsets.length < length + 1) throw new Error(`column '${path}' declares ${length} rows but carries ${Math.max(0, (offsets?.length ?? 1) - 1)} offsets`);
    const limit = VARIABLE.has(typeId) ? (values?.length ?? 0) : (data.children[0]?.length ?? 0);
    checkOffsets(offsets, length, limit, path);
  } else if (FIXED_WIDTH.has(typeId)) {
    const stride = Math.max(1, data.stride);
    if (!values || values.length < length * stride) throw new Error(`column '${path}' declares ${length} rows but its values hold ${Math.floor((values?.length ?? 0) / stride)}`);
  }
  if (typeId === STRUCT || typeId === FIXED_SIZE_LIST) {
    const childRows = typeId === FIXED_SIZE_LIST ? length * Math.max(1, data.stride) : length;
    for (const child of data.children) if (child.length < childRows) throw new Error(`column '${path}' declares ${length} rows but a child holds ${child.length}`);
  }
  if (typeId !== NULL) data.children.forEach((child, i) => checkData(child, `${path}.${data.type.children?.[i]?.name ?? i}`));
}

/** Checks a decoded batch: declared rows fit its buffers and the bytes it came in. */
export function checkBatchBounds(batch: { numRows: number; schema: { fields: Array<{ name: string }> }; data: { children: unknown[] } }, receivedBytes: number): void {
  // A batch of only null-typed columns carries no buffers: bound it by what was received.
  if (batch.numRows > 8 * receivedBytes + 65_536) throw new Error(`a batch declares ${batch.numRows} rows in ${receivedBytes} bytes`);
  batch.data.children.forEach((child, i) => checkData(child as DataLike, batch.schema.fields[i]?.name ?? String(i)));
}
