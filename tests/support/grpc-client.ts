/**
 * A plain grpc-js client of the Conduit service for transport tests: loads the .proto the
 * service loads, calls methods by name, and decodes the ErrorInfo of a failed call.
 */
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { findProtoDir } from "../../src/transport/proto.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- dynamic grpc-js client methods
export type Client = grpc.Client & Record<string, any>;

export interface ClientOptions {
  credentials?: grpc.ChannelCredentials;
  maxReceiveBytes?: number;
}

/** Conduit and Health clients of a server at `address`. */
export function serviceClients(address: string, { credentials = grpc.credentials.createInsecure(), maxReceiveBytes = 64 * 1024 * 1024 }: ClientOptions = {}) {
  const definition = protoLoader.loadSync(["spark_conduit/v1/conduit.proto", "grpc/health/v1/health.proto"], {
    includeDirs: [findProtoDir()],
    keepCase: false,
    longs: Number,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
    enums: String,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    spark_conduit: { v1: { Conduit: grpc.ServiceClientConstructor } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  return {
    conduit: new pkg.spark_conduit.v1.Conduit(address, credentials, { "grpc.max_receive_message_length": maxReceiveBytes }) as unknown as Client,
    health: new pkg.grpc.health.v1.Health(address, credentials) as unknown as Client,
  };
}

export function unaryCall<T>(client: Client, method: string, request: object, metadata = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) => {
    (client[method] as (r: object, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, v: T) => void) => void).call(client, request, metadata, (error, value) =>
      error ? reject(error) : resolve(value),
    );
  });
}

export interface ErrorDetails {
  message: string;
  /** The stable error class. */
  reason: string;
  domain: string;
  metadata: Record<string, string>;
  typeUrl: string;
}

/** The google.rpc.Status and ErrorInfo the service puts in every error's trailer. */
export function errorDetails(error: grpc.ServiceError): ErrorDetails {
  const bytes = error.metadata.get("grpc-status-details-bin")[0] as Buffer;
  const root = new protobuf.Root();
  const dir = findProtoDir();
  root.resolvePath = (_origin, target) => (target.startsWith("google/protobuf/") ? target : join(dir, target));
  root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
  const status = root.lookupType("google.rpc.Status").decode(bytes) as unknown as { message: string; details: Array<{ type_url: string; value: Uint8Array }> };
  const detail = status.details[0]!;
  const info = root.lookupType("google.rpc.ErrorInfo").decode(detail.value) as unknown as { reason: string; domain: string; metadata: Record<string, string> };
  return { message: status.message, reason: info.reason, domain: info.domain, metadata: info.metadata, typeUrl: detail.type_url };
}
