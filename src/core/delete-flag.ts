/**
 * The seeds' delete flag: a row whose `delete_flag_column` value, as text, equals
 * `delete_flag_value` deletes the row's key instead of writing it. Both backends match
 * the same way, so a job behaves the same against either database.
 */
import { Type, type DataType } from "apache-arrow";
import { DecimalValue, describeType, type PlainValue } from "../arrow/values.js";
import { invalidArgument } from "./errors.js";

/** The value as the user would write it: booleans as true/false, numbers as written. */
export function deleteFlagText(value: PlainValue): string | undefined {
  if (value === null) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "boolean" || typeof value === "number" || typeof value === "bigint") return String(value);
  if (value instanceof DecimalValue) return value.toNormalizedString();
  return undefined;
}

/** True when `value`, of a flag column of type `flagType`, marks a delete. A boolean column matches "true" in any case. */
export function isDeleteValue(value: PlainValue, flagValue: string, flagType: DataType): boolean {
  const text = deleteFlagText(value);
  if (text === undefined) return false;
  return text === flagValue || (flagType.typeId === Type.Bool && text === flagValue.trim().toLowerCase());
}


/** Flag column types whose values have a text form `deleteFlagText` can match. */
const FLAG_TYPES = new Set<Type>([Type.Utf8, Type.LargeUtf8, Type.Bool, Type.Int, Type.Float, Type.Decimal, Type.Null]);

/**
 * Refuses, at planning time, a flag column that could never match: its values (lists,
 * maps, structs, binaries, dates) have no text form to compare, or it is boolean
 * and `delete_flag_value` is neither true nor false. Either way every row would be
 * written and none deleted, silently.
 */
export function checkDeleteFlagColumn(column: string, type: DataType, flagValue: string | undefined, where: string): void {
  if (!FLAG_TYPES.has(type.typeId)) {
    throw invalidArgument(
      "DELETE_FLAG_COLUMN_TYPE",
      `Column '${column}', named by option 'delete_flag_column' for writes to ${where}, is ${describeType(type)}; a delete flag must be a string, boolean or number column so its value can equal delete_flag_value. Cast it, e.g. .withColumn("${column}", col("${column}").cast("string")).`,
      { option: "delete_flag_column", column, type: describeType(type) },
    );
  }
  if (type.typeId === Type.Bool && flagValue !== undefined && !["true", "false"].includes(flagValue.trim().toLowerCase())) {
    throw invalidArgument(
      "OPTION_INVALID_VALUE",
      `Option 'delete_flag_value' is '${flagValue}' but column '${column}' is boolean, so no row would ever match: use 'true' or 'false'.`,
      { option: "delete_flag_value", value: flagValue, column },
    );
  }
}
