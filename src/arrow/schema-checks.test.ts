import { Field, Int32, Schema, Utf8 } from "apache-arrow";
import { describe, expect, it } from "vitest";
import { checkDistinctColumnNames } from "./schema-checks.js";

describe("checkDistinctColumnNames", () => {
  it("refuses a schema with two columns of one name, naming it", () => {
    const schema = new Schema([new Field("id", new Utf8()), new Field("age", new Int32()), new Field("age", new Utf8())]);
    expect(() => checkDistinctColumnNames(schema, "ks.t")).toThrow(expect.objectContaining({ errorClass: "COLUMN_DUPLICATE", parameters: { column: "age" } }));
  });

  it("accepts distinct names, which are case-sensitive", () => {
    expect(() => checkDistinctColumnNames(new Schema([new Field("id", new Utf8()), new Field("ID", new Utf8())]), "ks.t")).not.toThrow();
  });
});
