"""``python -m spark_conduit status|start|stop``: the embedded service of this host."""

from __future__ import annotations

import argparse
import json
import sys

from spark_conduit import service
from spark_conduit.errors import SparkConduitError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spark_conduit",
        description="Inspect or control the spark-conduit service this host's Spark workers share.",
        epilog="Run it with the jobs' environment: each user and credential environment (AWS_PROFILE, "
        "AWS keys, ...) has its own service and runtime directory, unless SPARK_CONDUIT_RUNTIME_DIR names one.",
    )
    parser.add_argument("command", choices=["status", "start", "stop"])
    args = parser.parse_args(argv)
    try:
        if args.command == "status":
            info = service.status()
            print(json.dumps(info, indent=2))
            return 0 if info["serving"] else 3
        if args.command == "start":
            target = service.ensure_service()
            print(f"spark-conduit service is serving at {target}")
            return 0
        print(service.stop_service())
        return 0
    except SparkConduitError as error:
        print(str(error), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
