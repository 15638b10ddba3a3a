/** Awaits a promise that must reject with a ConduitError, and returns the error. */
import { expect } from "vitest";
import { ConduitError } from "../../src/core/errors.js";

export async function rejection(promise: Promise<unknown>): Promise<ConduitError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ConduitError);
    return error as ConduitError;
  }
  throw new Error("expected a ConduitError");
}

/** Runs a function that must throw a ConduitError, and returns the error. */
export function thrown(fn: () => unknown): ConduitError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConduitError);
    return error as ConduitError;
  }
  throw new Error("expected a ConduitError");
}
