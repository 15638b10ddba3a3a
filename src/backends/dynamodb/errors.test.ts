import { describe, expect, it } from "vitest";
import { ConduitError } from "../../core/errors.js";
import { isRetryable, translateDynamoDbError, type ErrorContext } from "./errors.js";
import { sdkError } from "./test-fakes.js";

const local: ErrorContext = { table: "users", region: "us-east-1", endpoint: "http://127.0.0.1:8000", operation: "Scan" };
const aws: ErrorContext = { table: "users", region: "eu-west-1", endpoint: undefined, operation: "BatchWriteItem", writing: true };

describe("translateDynamoDbError", () => {
  it("maps a missing table to NOT_FOUND naming table and endpoint or region", () => {
    const cause = sdkError("ResourceNotFoundException", "Cannot do operations on a non-existent table");
    const error = translateDynamoDbError(cause, local);
    expect(error).toMatchObject({ code: "NOT_FOUND", errorClass: "TABLE_NOT_FOUND", parameters: { table: "users", endpoint: "http://127.0.0.1:8000" } });
    expect(error.message).toContain("'users'");
    expect(error.message).toContain("endpoint http://127.0.0.1:8000");
    expect(error.message).not.toContain("create_table");
    expect(error.cause).toBe(cause);
    const onWrite = translateDynamoDbError(cause, aws);
    expect(onWrite.message).toContain("region eu-west-1");
    expect(onWrite.message).toContain("create_table");
  });

  it("maps validation errors to INVALID_ARGUMENT with DynamoDB's reason", () => {
    const error = translateDynamoDbError(sdkError("ValidationException", "One or more parameter values were invalid"), local);
    expect(error).toMatchObject({ code: "INVALID_ARGUMENT", errorClass: "DYNAMODB_VALIDATION" });
    expect(error.message).toContain("One or more parameter values were invalid");
  });

  it("maps credential failures to UNAUTHENTICATED without echoing secrets", () => {
    for (const name of ["UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "CredentialsProviderError"]) {
      const error = translateDynamoDbError(sdkError(name, "bad token=abcd1234 for AKIAABCDEFGHIJKLMNOP"), aws);
      expect(error.code).toBe("UNAUTHENTICATED");
      expect(error.message).not.toContain("abcd1234");
      expect(error.message).not.toContain("AKIAABCDEFGHIJKLMNOP");
      expect(error.message).toContain("aws_access_key_id");
    }
    expect(translateDynamoDbError(sdkError("AccessDeniedException", "no"), aws).code).toBe("PERMISSION_DENIED");
  });

  it("maps throttling that outlasted the SDK's retries to RESOURCE_EXHAUSTED", () => {
    const error = translateDynamoDbError(sdkError("ProvisionedThroughputExceededException", "rate"), local);
    expect(error).toMatchObject({ code: "RESOURCE_EXHAUSTED", errorClass: "DYNAMODB_THROTTLED" });
    expect(translateDynamoDbError(sdkError("ThrottlingException"), local).code).toBe("RESOURCE_EXHAUSTED");
  });

  it("maps refused connections to UNAVAILABLE naming the endpoint", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8000"), { code: "ECONNREFUSED" });
    const error = translateDynamoDbError(refused, local);
    expect(error).toMatchObject({ code: "UNAVAILABLE", errorClass: "DYNAMODB_UNAVAILABLE" });
    expect(error.message).toContain("http://127.0.0.1:8000");
    const aggregate = Object.assign(new AggregateError([Object.assign(new Error("x"), { code: "ECONNREFUSED" })], "failed"), {});
    expect(translateDynamoDbError(aggregate, aws).message).toContain("region eu-west-1");
    expect(translateDynamoDbError(sdkError("InternalServerError", "boom", 500), aws).code).toBe("UNAVAILABLE");
  });

  it("maps aborts to CANCELLED and passes ConduitErrors through", () => {
    const abort = Object.assign(new Error("aborted"), { name: "AbortError" });
    expect(translateDynamoDbError(abort, local).code).toBe("CANCELLED");
    const own = new ConduitError({ code: "INTERNAL", errorClass: "X", message: "x" });
    expect(translateDynamoDbError(own, local)).toBe(own);
    const other = translateDynamoDbError(new TypeError("weird"), local);
    expect(other.code).toBe("INTERNAL");
    expect(other.message).toContain("weird");
  });

  it("classifies what the writer retries", () => {
    expect(isRetryable(sdkError("ProvisionedThroughputExceededException"))).toBe(true);
    expect(isRetryable(sdkError("RequestLimitExceeded"))).toBe(true);
    expect(isRetryable(sdkError("SomethingElse", "x", 503))).toBe(true);
    expect(isRetryable(Object.assign(new Error("reset"), { code: "ECONNRESET" }))).toBe(true);
    expect(isRetryable(sdkError("ValidationException"))).toBe(false);
    expect(isRetryable(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))).toBe(false);
  });
});
