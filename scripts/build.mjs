#!/usr/bin/env node
// Builds the service into one file (dist/spark-conduit.cjs, every dependency bundled) with
// the .proto contract beside it, copies both into the Python package (the shim starts the
// service from there), and generates the Python gRPC stubs from the same .proto files.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// --service-only: just dist/ (the container image build has no Python).
const serviceOnly = process.argv.includes("--service-only");
const dist = join(root, "dist");
const shimServer = join(root, "python-shim", "src", "spark_conduit", "server");

rmSync(dist, { recursive: true, force: true });
await build({
  entryPoints: [join(root, "src", "cli.ts")],
  outfile: join(dist, "spark-conduit.cjs"),
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: "linked",
  // In the bundle the proto/ directory sits next to the file.
  define: { "import.meta.dirname": "__dirname" },
  logLevel: "warning",
  legalComments: "linked",
});
cpSync(join(root, "proto"), join(dist, "proto"), { recursive: true });

if (serviceOnly) {
  console.log("built dist/spark-conduit.cjs");
  process.exit(0);
}

// The fault-injecting proxy the reliability tests put between the service and a database
// (a test tool: not copied into the Python package).
await build({
  entryPoints: [join(root, "tests", "support", "fault-proxy", "cli.ts")],
  outfile: join(dist, "fault-proxy.cjs"),
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  logLevel: "warning",
});

rmSync(shimServer, { recursive: true, force: true });
mkdirSync(shimServer, { recursive: true });
cpSync(join(dist, "spark-conduit.cjs"), join(shimServer, "spark-conduit.cjs"));
cpSync(join(dist, "proto"), join(shimServer, "proto"), { recursive: true });

const python = process.env.PYTHON ?? (existsSync(join(root, ".venv", "bin", "python")) ? join(root, ".venv", "bin", "python") : "python3");
execFileSync(
  python,
  ["-m", "grpc_tools.protoc", "-I", "proto", "--python_out=python-shim/src", "--grpc_python_out=python-shim/src", "--pyi_out=python-shim/src", "proto/spark_conduit/v1/conduit.proto"],
  { cwd: root, stdio: "inherit" },
);
console.log("built dist/spark-conduit.cjs, copied it to python-shim, generated Python stubs");
