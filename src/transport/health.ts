/** The standard gRPC health service: SERVING until shutdown begins. */
import * as grpc from "@grpc/grpc-js";

export class HealthState {
  serving = true;
}

export function createHealthHandlers(state: HealthState): grpc.UntypedServiceImplementation {
  const status = () => ({ status: state.serving ? "SERVING" : "NOT_SERVING" });
  return {
    Check: ((_call, callback) => callback(null, status())) as grpc.handleUnaryCall<unknown, unknown>,
    Watch: ((call) => {
      call.write(status());
    }) as grpc.handleServerStreamingCall<unknown, unknown>,
  } as grpc.UntypedServiceImplementation;
}
