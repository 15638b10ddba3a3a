/**
 * Bearer-token check for every Conduit call when the service has a token. Health checks
 * stay open so load balancers can probe without credentials.
 */
import { timingSafeEqual } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { ConduitError } from "../core/errors.js";
import { toServiceError } from "./status.js";

function authorized(metadata: grpc.Metadata, token: string): boolean {
  const header = metadata.get("authorization")[0];
  if (typeof header !== "string" || !header.startsWith("Bearer ")) return false;
  const given = Buffer.from(header.slice("Bearer ".length));
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const UNAUTHENTICATED = () =>
  toServiceError(
    new ConduitError({
      code: "UNAUTHENTICATED",
      errorClass: "SERVICE_TOKEN_INVALID",
      message: "The spark-conduit service requires a bearer token: set the service_token option or the SPARK_CONDUIT_TOKEN environment variable to the service's token.",
    }),
    "authenticate",
  );

/** Wraps every handler of `definition` so that calls without the token fail UNAUTHENTICATED. */
export function requireToken(definition: grpc.ServiceDefinition, handlers: grpc.UntypedServiceImplementation, token: string | undefined): grpc.UntypedServiceImplementation {
  if (!token) return handlers;
  const wrapped: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const handler = handlers[name] as (call: grpc.ServerUnaryCall<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>) => void;
    wrapped[name] = ((call: grpc.ServerUnaryCall<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>) => {
      if (authorized(call.metadata, token)) return handler(call, callback);
      if (method.responseStream) return (call as unknown as grpc.ServerWritableStream<unknown, unknown>).emit("error", UNAUTHENTICATED());
      return callback?.(UNAUTHENTICATED());
    }) as grpc.UntypedHandleCall;
  }
  return wrapped;
}
