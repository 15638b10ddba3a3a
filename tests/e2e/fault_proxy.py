"""The fault-injecting proxy (tests/support/fault-proxy, bundled as dist/fault-proxy.cjs) as a
Python context manager for the end-to-end tests:

    with FaultProxy("http", "127.0.0.1", 8000) as proxy:
        proxy.configure({"faults": [{"kind": "throttling", "probability": 0.1}]})
        ... endpoint_url = proxy.url ...
        assert proxy.stats()["throttling"] > 0

The proxy runs as its own Node process with a bounded lifetime (``max_seconds``), and exits
when this process closes its stdin, so a crashed test run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from e2e_support import ROOT, missing, run

BUNDLE = ROOT / "dist" / "fault-proxy.cjs"


def _bundle() -> Path:
    """dist/fault-proxy.cjs (scripts/build.mjs builds it), else a private build of the same
    source: another build may be rewriting dist/ right now (build.mjs empties it first)."""
    if BUNDLE.is_file():
        return BUNDLE
    esbuild = ROOT / "node_modules" / ".bin" / "esbuild"
    if not esbuild.is_file():
        missing(f"the fault proxy bundle {BUNDLE} is missing and esbuild is not installed: run `npm run build`")
    directory = tempfile.mkdtemp(prefix="fault-proxy-")
    atexit.register(shutil.rmtree, directory, True)
    out = Path(directory) / "fault-proxy.cjs"
    source = "tests/support/fault-proxy/cli.ts"
    result = run([str(esbuild), source, "--bundle", "--platform=node", "--log-level=warning", f"--outfile={out}"])
    if result.returncode != 0:
        raise RuntimeError(f"building the fault proxy failed: {result.stderr.strip()}")
    return out


class FaultProxy:
    """One proxy process: ``host``/``port`` to point a client at, control methods to steer it."""

    def __init__(
        self,
        protocol: str,
        target_host: str,
        target_port: int,
        *,
        latency_ms: int = 0,
        max_seconds: int = 600,
        start_timeout: float = 30,
    ) -> None:
        # Kept open for the process's lifetime (closed in close()), so not a with-block.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        command = [
            "node",
            str(_bundle()),
            "--protocol",
            protocol,
            "--target",
            f"{target_host}:{target_port}",
            "--latency-ms",
            str(latency_ms),
            "--max-seconds",
            str(max_seconds),
            "--exit-with-stdin",
        ]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        line = self._first_line(start_timeout)
        info = json.loads(line)
        self.host: str = info["host"]
        self.port: int = int(info["port"])
        self.control: str = info["control"]

    def _first_line(self, timeout: float) -> str:
        import selectors

        assert self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                self._kill()
                raise RuntimeError(f"the fault proxy printed nothing within {timeout} s{self._stderr_text()}")
        line = self._process.stdout.readline().decode()
        if not line.strip():
            self._kill()
            raise RuntimeError(f"the fault proxy exited before it started{self._stderr_text()}")
        return line

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return f": {text}" if text else ""

    @property
    def url(self) -> str:
        """The proxy as an HTTP endpoint (for DynamoDB's endpoint_url)."""
        return f"http://{self.host}:{self.port}"

    def _call(self, method: str, path: str, body: Any = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.control}{path}", data=data, method=method)
        request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            detail = json.loads(error.read() or b"{}").get("error", "")
            raise ValueError(f"fault proxy {method} {path}: {detail or error}") from None

    def configure(self, plan: dict) -> None:
        """Replaces the fault plan (ValueError when the proxy rejects it)."""
        self._call("PUT", "/faults", plan)

    def stats(self) -> dict[str, int]:
        """Counts of requests and of each injected fault since the proxy started."""
        return self._call("GET", "/stats")

    def pause(self) -> None:
        self._call("POST", "/pause")

    def resume(self) -> None:
        self._call("POST", "/resume")

    def reset_connections(self) -> None:
        self._call("POST", "/reset")

    def set_latency(self, ms: int) -> None:
        self._call("PUT", "/latency", {"ms": ms})

    def close(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self._call("POST", "/close")
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
        self._stderr.close()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()

    def _kill(self) -> None:
        self._process.kill()
        self._process.wait(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


__all__ = ["BUNDLE", "FaultProxy"]
