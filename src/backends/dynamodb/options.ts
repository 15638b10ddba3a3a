/**
 * The options of `format("dynamodb")`. The seed data source's options keep their names,
 * defaults and meaning; the rest are what a production job needs to tune or protect a
 * write. Cross-option rules that a single option cannot express live in
 * `parseDynamoDbOptions`, so every entry point gets the same errors before any request.
 */
import { invalidArgument } from "../../core/errors.js";
import { parseStartingTimestamp } from "../../options/starting-position.js";
import { commonOptions } from "../../options/common.js";
import { booleanOption, enumOption, integerOption, OptionRegistry, stringOption, type Operation, type ParsedOptions } from "../../options/registry.js";

export const BILLING_MODES = ["PAY_PER_REQUEST", "PROVISIONED"] as const;
export type BillingMode = (typeof BILLING_MODES)[number];

export const dynamoDbOptionSpecs = {
  ...commonOptions,
  table_name: stringOption({ description: "DynamoDB table name (or table ARN).", required: true }),
  aws_region: stringOption({ description: "AWS region of the table, e.g. `us-east-1`.", required: true }),
  aws_access_key_id: stringOption({
    description: "AWS access key ID. When not set, the service's default AWS credential chain is used (environment, profile, instance role).",
  }),
  aws_secret_access_key: stringOption({ description: "AWS secret access key; required together with `aws_access_key_id`.", secret: true }),
  aws_session_token: stringOption({ description: "AWS session token for temporary credentials (with `aws_access_key_id` and `aws_secret_access_key`).", secret: true }),
  endpoint_url: stringOption({ description: "Custom endpoint URL, e.g. `http://localhost:8000` for DynamoDB Local." }),
  delete_flag_column: stringOption({
    description:
      "Column marking rows to delete: a row whose value in this column equals `delete_flag_value` deletes the item with its key instead of writing it. The column itself is never written as an attribute. Must be used with `delete_flag_value`.",
    scope: "write",
  }),
  delete_flag_value: stringOption({
    description: "Value of `delete_flag_column` that triggers a delete, compared as text (a boolean `true` matches `true`). Must be used with `delete_flag_column`.",
    scope: "write",
  }),
  total_segments: integerOption({
    description: "Number of parallel scan segments; each segment is one Spark partition.",
    scope: "read",
    default: 1,
    min: 1,
    max: 1_000_000,
  }),
  consistent_read: booleanOption({ description: "Use strongly consistent reads (twice the read capacity of eventually consistent ones).", scope: "read", default: false }),
  read_page_size: integerOption({
    description: "Items per Scan request (DynamoDB's `Limit`); each page becomes one Arrow batch. Default: as many as fit in DynamoDB's 1 MB page.",
    scope: "read",
    min: 1,
    max: 1_000_000,
  }),
  starting_position: stringOption({
    description:
      "Makes the read a change stream (`spark.readStream`) of the table's DynamoDB Stream, and says where a new query starts: `trim_horizon` or `earliest` (the oldest record, up to 24 hours back), `latest` (changes from now on) or an ISO-8601 timestamp such as `2026-11-25T10:00:00Z` (changes from that second on). A restarted query continues from its checkpoint instead.",
    scope: "stream",
  }),
  fail_on_data_loss: booleanOption({
    description:
      "Fail a streaming read when records it has not read left the stream (older than 24 hours, or the stream was disabled). `false`: log a warning and go on from the oldest record left.",
    scope: "stream",
    default: true,
  }),
  max_records_per_trigger: integerOption({
    description: "At most this many change records per micro-batch (Spark 4.2+; Spark 4.0 and 4.1 read all that is available). `Trigger.AvailableNow` honours it too.",
    scope: "stream",
    min: 1,
    max: 1_000_000_000,
  }),
  schema_sample_size: integerOption({
    description: "Number of items sampled to infer the schema when none is given. Columns are the union of the attributes seen, in alphabetical order.",
    scope: "read",
    default: 100,
    min: 1,
    max: 100_000,
  }),
  create_table: booleanOption({
    description: "Create the table when it does not exist (key types come from the DataFrame's columns), then wait until it is ACTIVE. Needs `hash_key`.",
    scope: "write",
    default: false,
  }),
  hash_key: stringOption({
    description: "Partition (hash) key attribute for `create_table`. When the table exists, it must match the table's hash key.",
    scope: "write",
  }),
  range_key: stringOption({
    description: "Sort (range) key attribute for `create_table` (optional). When the table exists, it must match the table's range key.",
    scope: "write",
  }),
  billing_mode: enumOption<BillingMode>({
    description: "Billing mode of a table created by `create_table`.",
    scope: "write",
    values: BILLING_MODES,
    default: "PAY_PER_REQUEST",
  }),
  read_capacity_units: integerOption({
    description: "Provisioned read capacity of a table created with `billing_mode` PROVISIONED (required then).",
    scope: "write",
    min: 1,
  }),
  write_capacity_units: integerOption({
    description: "Provisioned write capacity of a table created with `billing_mode` PROVISIONED (required then).",
    scope: "write",
    min: 1,
  }),
  write_concurrency: integerOption({
    description: "BatchWriteItem requests (25 items each) in flight per Spark task.",
    scope: "write",
    default: 16,
    min: 1,
    max: 1024,
  }),
  max_retry_seconds: integerOption({
    description:
      "How long a task keeps retrying unprocessed or throttled items (exponential backoff with jitter) before failing with WRITE_RETRIES_EXHAUSTED. Each request also gets the AWS SDK's own up to 8 attempts, which can add about 20 s under constant throttling.",
    scope: "write",
    default: 120,
    min: 0,
    max: 86_400,
  }),
  confirm_truncate: booleanOption({
    description:
      'Allow `mode("overwrite")`, which deletes every item of the table before writing. Without it an overwrite is refused; use `mode("append")` to upsert instead.',
    scope: "write",
    default: false,
  }),
} as const;

export type DynamoDbOptionSpecs = typeof dynamoDbOptionSpecs;
export type DynamoDbOptions = ParsedOptions<DynamoDbOptionSpecs>;

export const dynamoDbOptions = new OptionRegistry("dynamodb", dynamoDbOptionSpecs);

const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;
const TABLE_ARN = /^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/[A-Za-z0-9_.-]{3,255}$/;
const REGION = /^[a-z]{2,}(-[a-z0-9]+)+$|^local$/;

function rule(errorClass: string, message: string, parameters: Record<string, string>): never {
  throw invalidArgument(errorClass, message, parameters);
}

/** Parses and cross-checks options for one operation; every rule names the options at fault. */
export function parseDynamoDbOptions(raw: Record<string, string>, operation: Operation): DynamoDbOptions {
  const options = dynamoDbOptions.parse(raw, operation);

  if (!TABLE_NAME.test(options.table_name) && !TABLE_ARN.test(options.table_name)) {
    rule(
      "OPTION_INVALID_VALUE",
      `Option 'table_name' has the invalid value '${options.table_name}': DynamoDB table names are 3 to 255 characters of a-z, A-Z, 0-9, '_', '-' and '.' (or a table ARN).`,
      { option: "table_name", value: options.table_name },
    );
  }
  if (!REGION.test(options.aws_region)) {
    rule("OPTION_INVALID_VALUE", `Option 'aws_region' has the invalid value '${options.aws_region}': expected a region name such as 'us-east-1'.`, {
      option: "aws_region",
      value: options.aws_region,
    });
  }
  if (options.endpoint_url !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(options.endpoint_url);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
      rule("OPTION_INVALID_VALUE", `Option 'endpoint_url' has the invalid value '${options.endpoint_url}': expected an http:// or https:// URL such as 'http://localhost:8000'.`, {
        option: "endpoint_url",
        value: options.endpoint_url,
      });
    }
  }
  const hasKeyId = options.aws_access_key_id !== undefined;
  const hasSecret = options.aws_secret_access_key !== undefined;
  if (hasKeyId !== hasSecret) {
    const [present, missing] = hasKeyId ? ["aws_access_key_id", "aws_secret_access_key"] : ["aws_secret_access_key", "aws_access_key_id"];
    rule("OPTION_CONFLICT", `Option '${present}' is set but '${missing}' is not: static credentials need both (or neither, to use the default AWS credential chain).`, {
      option: missing,
    });
  }
  if (options.aws_session_token !== undefined && !hasKeyId) {
    rule("OPTION_CONFLICT", "Option 'aws_session_token' is set without 'aws_access_key_id' and 'aws_secret_access_key': a session token only works together with them.", {
      option: "aws_session_token",
    });
  }

  if (operation === "write") checkWriteOptions(options);
  if (options.starting_position !== undefined) parseStartingPosition(options.starting_position);
  return options;
}

export type StartingPosition = { type: "trim_horizon" } | { type: "latest" } | { type: "timestamp"; at: Date };

/** `trim_horizon`, `latest` or an ISO-8601 timestamp (with a zone, or UTC when it has none). */
export function parseStartingPosition(text: string): StartingPosition {
  const value = text.trim().toLowerCase();
  if (value === "trim_horizon" || value === "earliest") return { type: "trim_horizon" };
  if (value === "latest") return { type: "latest" };
  const at = parseStartingTimestamp(text);
  if (at) return { type: "timestamp", at };
  return rule(
    "OPTION_INVALID_VALUE",
    `Option 'starting_position' has the invalid value '${text}': expected trim_horizon (the oldest record in the stream), latest (changes from now on) or an ISO-8601 timestamp such as 2026-11-25T10:00:00Z.`,
    { option: "starting_position", value: text },
  );
}

/** billing_mode without create_table is accepted and ignored, as in the seed (it never changes an existing table). */
function checkWriteOptions(options: DynamoDbOptions): void {
  if ((options.delete_flag_column === undefined) !== (options.delete_flag_value === undefined)) {
    const [present, missing] = options.delete_flag_column !== undefined ? ["delete_flag_column", "delete_flag_value"] : ["delete_flag_value", "delete_flag_column"];
    rule("OPTION_CONFLICT", `Option '${present}' needs '${missing}': rows are deleted when the value of 'delete_flag_column' equals 'delete_flag_value'. Set both, or neither.`, {
      option: missing,
    });
  }
  if (options.create_table && options.hash_key === undefined) {
    rule("OPTION_CONFLICT", "Option 'create_table' is true but 'hash_key' is not set: name the DataFrame column to use as the table's partition key with option 'hash_key'.", {
      option: "hash_key",
    });
  }
  if (options.range_key !== undefined && options.hash_key === undefined) {
    rule("OPTION_CONFLICT", "Option 'range_key' is set without 'hash_key': a sort key only exists together with a partition key. Set 'hash_key' too.", { option: "hash_key" });
  }
  if (options.range_key !== undefined && options.range_key === options.hash_key) {
    rule("OPTION_CONFLICT", `Options 'hash_key' and 'range_key' both name '${options.hash_key}': the sort key must be a different attribute.`, { option: "range_key" });
  }
  for (const name of ["read_capacity_units", "write_capacity_units"] as const) {
    if (options[name] === undefined) continue;
    if (options.billing_mode !== "PROVISIONED") {
      rule("OPTION_CONFLICT", `Option '${name}' only applies with billing_mode PROVISIONED (billing_mode is ${options.billing_mode}). Remove it or set billing_mode to PROVISIONED.`, {
        option: name,
      });
    }
    if (!options.create_table) {
      rule("OPTION_CONFLICT", `Option '${name}' only applies to a table created by this write: set create_table to true, or remove it.`, { option: name });
    }
  }
  if (options.create_table && options.billing_mode === "PROVISIONED") {
    for (const name of ["read_capacity_units", "write_capacity_units"] as const) {
      if (options[name] === undefined) {
        rule("OPTION_REQUIRED", `Option '${name}' is required when create_table creates a table with billing_mode PROVISIONED.`, { option: name, format: "dynamodb" });
      }
    }
  }
  if (options.delete_flag_column !== undefined && (options.delete_flag_column === options.hash_key || options.delete_flag_column === options.range_key)) {
    rule("OPTION_CONFLICT", `Option 'delete_flag_column' names the key column '${options.delete_flag_column}': the delete flag must be a separate column.`, {
      option: "delete_flag_column",
    });
  }
}
