/**
 * The rows of `spark.readStream.format("dynamodb")`: one change event each. The images are
 * typed structs with the batch read's type mapping (an item schema inferred by sampling the
 * table, or the struct types of the user's `.schema(...)`), so a stream and a batch read of
 * the same table agree on every column's type.
 */
import { Field, RecordBatch, Schema, Struct, TimestampMicrosecond, Type, Utf8, type DataType } from "apache-arrow";
import { BatchBuilder } from "../../arrow/batch-builder.js";
import { describeType, MICROS_PER_MILLI, type PlainValue } from "../../arrow/values.js";
import { invalidArgument } from "../../core/errors.js";
import type { ChangeRecord } from "./stream.js";
import { attributeToPlain, checkReadSchema } from "./types.js";

/** The event columns, in the order an inferred schema has them. */
export const CHANGE_COLUMNS = ["event_name", "event_id", "shard_id", "sequence_number", "approximate_creation_time", "keys", "new_image", "old_image"] as const;
export type ChangeColumn = (typeof CHANGE_COLUMNS)[number];

const STRUCT_COLUMNS: ReadonlySet<string> = new Set(["keys", "new_image", "old_image"]);
const TEXT_COLUMNS: ReadonlySet<string> = new Set(["event_name", "event_id", "shard_id", "sequence_number"]);

/** The change event schema for an item schema and the table's key attributes (hash key first). */
export function changeEventSchema(itemSchema: Schema, keyNames: readonly string[]): Schema {
  const byName = new Map(itemSchema.fields.map((f) => [f.name, f]));
  const keyFields = keyNames.map((name) => {
    const field = byName.get(name);
    return new Field(name, field ? field.type : new Utf8(), false);
  });
  const itemFields = itemSchema.fields.map((f) => new Field(f.name, f.type, true));
  return new Schema([
    new Field("event_name", new Utf8(), false),
    new Field("event_id", new Utf8(), false),
    new Field("shard_id", new Utf8(), false),
    new Field("sequence_number", new Utf8(), false),
    new Field("approximate_creation_time", new TimestampMicrosecond("UTC"), true),
    new Field("keys", new Struct(keyFields), false),
    new Field("new_image", new Struct(itemFields), true),
    new Field("old_image", new Struct(itemFields), true),
  ]);
}

function schemaError(message: string, column: string): never {
  throw invalidArgument(
    "STREAM_SCHEMA_INVALID",
    `${message} A streaming read of format 'dynamodb' has the change event columns ${CHANGE_COLUMNS.join(", ")} (any subset, in any order); ` +
      `build one from the item's schema with spark_conduit.dynamodb_change_schema(item_schema, key_columns), or leave out .schema(...) to infer it.`,
    { column },
  );
}

/** Checks a streaming read's schema (the user's, or the inferred one): only event columns, with their types. */
export function checkChangeEventSchema(schema: Schema): void {
  if (schema.fields.length > 0 && !schema.fields.some((f) => (CHANGE_COLUMNS as readonly string[]).includes(f.name))) {
    schemaError(`The schema's columns (${schema.fields.map((f) => f.name).join(", ")}) look like an item's, not a change event's.`, schema.fields[0]!.name);
  }
  for (const field of schema.fields) {
    const name = field.name;
    if (!(CHANGE_COLUMNS as readonly string[]).includes(name)) schemaError(`Column '${name}' is not a change event column.`, name);
    const typeId = field.type.typeId;
    if (TEXT_COLUMNS.has(name) && typeId !== Type.Utf8 && typeId !== Type.LargeUtf8) {
      schemaError(`Column '${name}' must be a string, not ${describeType(field.type)}.`, name);
    }
    if (name === "approximate_creation_time" && typeId !== Type.Timestamp) schemaError(`Column '${name}' must be a timestamp, not ${describeType(field.type)}.`, name);
    if (STRUCT_COLUMNS.has(name)) {
      if (typeId !== Type.Struct) schemaError(`Column '${name}' must be a struct of the item's attributes, not ${describeType(field.type)}.`, name);
      checkReadSchema(new Schema((field.type as Struct).children.map((c) => new Field(`${name}.${c.name}`, c.type, true))));
    }
  }
}

type Getter = (record: ChangeRecord) => PlainValue;

function imageGetter(type: DataType, column: string, image: (record: ChangeRecord) => ChangeRecord["newImage"]): Getter {
  return (record) => {
    const item = image(record);
    return item === null ? null : attributeToPlain({ M: item }, type, column);
  };
}

function getterFor(field: Field): Getter {
  switch (field.name as ChangeColumn) {
    case "event_name":
      return (r) => r.eventName;
    case "event_id":
      return (r) => r.eventId;
    case "shard_id":
      return (r) => r.shardId;
    case "sequence_number":
      return (r) => r.sequenceNumber;
    case "approximate_creation_time":
      return (r) => (r.approximateCreationTime === null ? null : BigInt(r.approximateCreationTime.getTime()) * BigInt(MICROS_PER_MILLI));
    case "keys":
      return imageGetter(field.type, "keys", (r) => r.keys);
    case "new_image":
      return imageGetter(field.type, "new_image", (r) => r.newImage);
    case "old_image":
      return imageGetter(field.type, "old_image", (r) => r.oldImage);
  }
}

/** Builds Arrow batches of change events in `schema` (checked with checkChangeEventSchema). */
export class ChangeBatchBuilder {
  private readonly builder: BatchBuilder;
  private readonly getters: Getter[];

  constructor(schema: Schema) {
    this.builder = new BatchBuilder(schema);
    this.getters = schema.fields.map(getterFor);
  }

  append(record: ChangeRecord): void {
    this.builder.appendRow(this.getters.map((get) => get(record)));
  }

  get length(): number {
    return this.builder.length;
  }

  flush(): RecordBatch {
    return this.builder.flush();
  }
}
