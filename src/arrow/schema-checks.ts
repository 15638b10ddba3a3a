/**
 * Checks on a DataFrame's schema that hold for every backend. Spark lets a DataFrame
 * carry two columns of one name (after a join or a selectExpr); a write must not guess
 * which one the user meant.
 */
import type { Schema } from "apache-arrow";
import { invalidArgument } from "../core/errors.js";

/** Throws COLUMN_DUPLICATE naming the first column name that appears twice. */
export function checkDistinctColumnNames(schema: Schema, where: string): void {
  const seen = new Set<string>();
  for (const field of schema.fields) {
    if (seen.has(field.name)) {
      throw invalidArgument(
        "COLUMN_DUPLICATE",
        `The DataFrame has more than one column named '${field.name}' (columns: ${schema.fields.map((f) => f.name).join(", ")}), so a write to ${where} cannot tell which to use. Rename or drop one, e.g. with .withColumnRenamed or an alias in the select.`,
        { column: field.name },
      );
    }
    seen.add(field.name);
  }
}
