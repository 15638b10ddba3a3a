# A Spark Connect server (pyspark from PyPI) with the spark-conduit shim installed, so
# format("dynamodb") resolves on the server without any register call.
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json requirements-dev.txt ./
RUN npm ci --no-audit --no-fund \
 && python3 -m venv /venv \
 && /venv/bin/pip install --no-cache-dir grpcio-tools==1.85.1 build
COPY . .
RUN PYTHON=/venv/bin/python node scripts/build.mjs \
 && /venv/bin/python -m build --wheel --outdir /wheels python-shim

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir "pyspark[connect]==4.3.0" /wheels/*.whl
ENV SPARK_NO_DAEMONIZE=1 PYSPARK_PYTHON=python3
EXPOSE 15002
CMD ["bash", "-c", "exec \"$(python -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')/sbin/start-connect-server.sh\" --conf spark.connect.grpc.binding.address=0.0.0.0 --conf spark.connect.grpc.binding.port=15002"]
