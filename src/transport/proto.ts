/**
 * Loads the .proto contract at start-up (proto-loader; no generated JS to keep in sync)
 * and exposes the service definitions and the message shapes the handlers use.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

/** Where the .proto files are: next to the bundle (dist/proto) or the repository's proto/. */
export function findProtoDir(): string {
  const fromEnv = process.env.SPARK_CONDUIT_PROTO_DIR;
  const here = import.meta.dirname;
  const candidates = [fromEnv, here && join(here, "proto"), here && join(here, "..", "..", "proto")].filter((c): c is string => !!c);
  for (const dir of candidates) {
    if (existsSync(join(dir, "spark_conduit", "v1", "conduit.proto"))) return dir;
  }
  throw new Error(`spark-conduit: cannot find the proto/ directory (looked in ${candidates.join(", ")}); set SPARK_CONDUIT_PROTO_DIR.`);
}

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

export interface LoadedProtos {
  conduit: grpc.ServiceDefinition;
  health: grpc.ServiceDefinition;
  /** Encoder for google.rpc.Status with ErrorInfo details (the rich error trailer). */
  encodeStatus(status: { code: number; message: string; reason: string; domain: string; metadata: Record<string, string> }): Buffer;
}

let cached: LoadedProtos | undefined;

export function loadProtos(): LoadedProtos {
  if (cached) return cached;
  const dir = findProtoDir();
  const definition = protoLoader.loadSync(["spark_conduit/v1/conduit.proto", "grpc/health/v1/health.proto"], { ...LOADER_OPTIONS, includeDirs: [dir] });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    spark_conduit: { v1: { Conduit: grpc.ServiceClientConstructor } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith("google/protobuf/") ? target : join(dir, target));
  root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
  const StatusType = root.lookupType("google.rpc.Status");
  const ErrorInfoType = root.lookupType("google.rpc.ErrorInfo");
  cached = {
    conduit: loaded.spark_conduit.v1.Conduit.service,
    health: loaded.grpc.health.v1.Health.service,
    encodeStatus({ code, message, reason, domain, metadata }) {
      const info = ErrorInfoType.encode(ErrorInfoType.create({ reason, domain, metadata })).finish();
      const status = StatusType.create({ code, message, details: [{ type_url: "type.googleapis.com/google.rpc.ErrorInfo", value: info }] });
      return Buffer.from(StatusType.encode(status).finish());
    },
  };
  return cached;
}

/** Message shapes as proto-loader produces them (camelCase, bytes as Buffer, int64 as number). */
export interface DescribeRequest {
  format: string;
  options: Record<string, string>;
  arrowSchema: Buffer;
}
export interface PlanReadRequest {
  format: string;
  options: Record<string, string>;
  arrowSchema: Buffer;
}
export interface ReadRequest extends PlanReadRequest {
  partition: Buffer;
}
export interface PlanWriteRequest {
  format: string;
  options: Record<string, string>;
  arrowSchema: Buffer;
  overwrite: boolean;
  streaming: boolean;
}
export interface WriteHeader {
  format: string;
  options: Record<string, string>;
  arrowSchema: Buffer;
  writePlan: Buffer;
  partitionId: number;
  taskAttemptId: number;
  batchId: number;
}
export interface WriteRequest {
  header?: WriteHeader | null;
  arrowBatch?: Buffer;
  payload?: "header" | "arrowBatch";
}
export interface WriteResponse {
  rowsWritten: number;
  rowsDeleted: number;
  requests: number;
  retries: number;
}
export interface FinishWriteRequest {
  format: string;
  options: Record<string, string>;
  writePlan: Buffer;
  taskResults: WriteResponse[];
  batchId: number;
}
export interface StreamOffsetRequest {
  format: string;
  options: Record<string, string>;
  arrowSchema: Buffer;
  startOffset: string;
  maxRecords: number;
  endBound: string;
  catchUp: boolean;
}
export interface PlanStreamReadRequest {
  format: string;
  options: Record<string, string>;
  arrowSchema: Buffer;
  startOffset: string;
  endOffset: string;
}
