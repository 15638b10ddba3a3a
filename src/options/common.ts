/**
 * Options every format accepts. They are consumed by the Python shim or by Spark itself;
 * the service knows them only so that strict parsing does not reject them.
 */
import { stringOption } from "./registry.js";

export const commonOptions = {
  service_endpoint: stringOption({
    description:
      "Address of a running spark-conduit service (`host:port`, `unix:/path`, or `https://host:port` for TLS). Default: the `SPARK_CONDUIT_ENDPOINT` environment variable, else a service the shim starts on this host.",
    clientSide: true,
  }),
  service_token: stringOption({
    description: "Bearer token for a remote service. Default: the `SPARK_CONDUIT_TOKEN` environment variable.",
    secret: true,
    clientSide: true,
  }),
  service_ca_cert: stringOption({
    description: "Path to the CA certificate that signed a remote service's TLS certificate. Default: the `SPARK_CONDUIT_CA_CERT` environment variable, else the system roots.",
    clientSide: true,
  }),
  checkpointlocation: stringOption({
    description: "Spark's streaming checkpoint directory (used by Spark, not by the connector).",
    clientSide: true,
  }),
  path: stringOption({ description: "Set by Spark for `load(path)`/`save(path)`; not used.", clientSide: true }),
} as const;
