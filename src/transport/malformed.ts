/**
 * Requests whose protobuf bytes do not decode. grpc-js answers them itself with INTERNAL
 * "Error deserializing request", which blames the service for a client's bytes and carries
 * no error class. Here the deserializers never throw: they return a marker, and the
 * wrapped handlers answer it with INVALID_ARGUMENT REQUEST_MALFORMED (found by fuzzing
 * the service with mutated requests).
 */
import * as grpc from "@grpc/grpc-js";
import { clip, invalidArgument } from "../core/errors.js";
import { toServiceError } from "./status.js";

const MALFORMED = Symbol("malformed request");

interface Malformed {
  [MALFORMED]: string;
}

function isMalformed(message: unknown): message is Malformed {
  return typeof message === "object" && message !== null && MALFORMED in message;
}

function malformedError(method: string, marker: Malformed): grpc.ServiceError {
  return toServiceError(
    invalidArgument(
      "REQUEST_MALFORMED",
      `A ${method} request could not be decoded as a spark_conduit.v1 message (${marker[MALFORMED]}): the bytes were corrupted, or the client speaks another version of the protocol.`,
      { method },
    ),
    method,
  );
}

/** `definition` with deserializers that return a marker instead of throwing. */
export function tolerantDeserializers(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (error) {
          return { [MALFORMED]: clip(error instanceof Error ? error.message : String(error), 200) } satisfies Malformed;
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> & AsyncIterable<unknown>;

/** Wraps every handler of `definition` (built by tolerantDeserializers) to answer a marker with REQUEST_MALFORMED. */
export function rejectMalformed(definition: grpc.ServiceDefinition, handlers: grpc.UntypedServiceImplementation): grpc.UntypedServiceImplementation {
  const wrapped: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const handler = handlers[name] as (call: AnyCall, callback?: grpc.sendUnaryData<unknown>) => void;
    wrapped[name] = ((call: AnyCall, callback?: grpc.sendUnaryData<unknown>) => {
      if (method.requestStream) {
        // The handler pulls messages with the call's async iterator: a marker fails it there.
        const messages = call[Symbol.asyncIterator].bind(call);
        call[Symbol.asyncIterator] = async function* () {
          for await (const message of { [Symbol.asyncIterator]: messages }) {
            if (isMalformed(message)) throw invalidArgument("REQUEST_MALFORMED", malformedError(name, message).details, { method: name });
            yield message;
          }
        };
        return handler(call, callback);
      }
      if (!isMalformed(call.request)) return handler(call, callback);
      if (method.responseStream) return (call as unknown as grpc.ServerWritableStream<unknown, unknown>).emit("error", malformedError(name, call.request));
      return callback?.(malformedError(name, call.request));
    }) as grpc.UntypedHandleCall;
  }
  return wrapped;
}
