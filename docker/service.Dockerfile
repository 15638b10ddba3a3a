# The spark-conduit service as a container: `node spark-conduit.cjs serve`.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY proto ./proto
COPY src ./src
COPY scripts/build.mjs ./scripts/build.mjs
RUN node scripts/build.mjs --service-only

FROM node:20-bookworm-slim
COPY --from=build /src/dist /opt/spark-conduit
USER node
# --max-semi-space-size: see NODE_FLAGS in python-shim/src/spark_conduit/service.py.
ENTRYPOINT ["node", "--max-semi-space-size=64", "/opt/spark-conduit/spark-conduit.cjs", "serve"]
# Loopback by default: docker-compose.yml runs it in the Spark container's network
# namespace. To expose it on a network, pass --listen 0.0.0.0:50551 with --tls-cert,
# --tls-key and --token-file /run/secrets/conduit-token (a file of mode 0400/0600 owned by
# the `node` user), or set SPARK_CONDUIT_TOKEN; a token is never an argument (ps shows those).
# The service refuses plaintext off loopback.
CMD ["--listen", "127.0.0.1:50551"]
