/**
 * The seeds' delete flag: a row whose `delete_flag_column` value, as text, equals
 * `delete_flag_value` deletes the row's key instead of writing it. Both backends match
 * the same way, so a job behaves the same against either database.
 */
import { Type, type DataType } from "apache-arrow";
import { DecimalValue, type PlainValue } from "../arrow/values.js";

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

