"""Start the worker as a real subprocess on a free port and wait until it serves.

Why: the tests (and genroute's own end-to-end tests) should talk to the worker exactly as
genroute will: over HTTP to ``python -m genroute_worker`` loading a model directory, not to
an in-process app. ``running_worker`` is a context manager yielding the base URL; it stops
the process (SIGTERM, then SIGKILL) on exit and, if start-up fails, raises with the tail of
the worker's log.

    from serve import running_worker
    with running_worker("/tmp/tiny/cogvideox", queue_size=2) as url:
        httpx.post(f"{url}/v1/videos", json={"prompt": "a cat", "size": "16x16"})

Flags are keyword arguments: ``queue_size=2`` -> ``--queue-size 2``; ``True`` -> a bare flag;
``None``/``False`` -> left out. ``env`` adds environment variables.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WORKER_SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_command(model_dir: str | os.PathLike[str], port: int, **flags: Any) -> list[str]:
    cmd = [sys.executable, "-m", "genroute_worker", "--model", str(model_dir), "--port", str(port)]
    for key, value in flags.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        cmd += [flag] if value is True else [flag, str(value)]
    return cmd


def _health(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


@contextlib.contextmanager
def running_worker(
    model_dir: str | os.PathLike[str],
    *,
    env: dict[str, str] | None = None,
    start_timeout: float = 120.0,
    python: str | None = None,
    **flags: Any,
) -> Iterator[str]:
    """Runs ``python -m genroute_worker --model DIR ...`` and yields ``http://127.0.0.1:PORT``."""
    port = free_port()
    cmd = worker_command(model_dir, port, **flags)
    if python is not None:
        cmd[0] = python
    full_env = dict(os.environ)
    full_env["HF_HUB_OFFLINE"] = "1"
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(WORKER_SRC), full_env.get("PYTHONPATH")) if p)
    full_env.update(env or {})
    log = tempfile.NamedTemporaryFile(prefix="genroute-worker-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while _health(url) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = Path(log.name).read_text(errors="replace")[-3000:]
                why = f"exited with {proc.returncode}" if proc.poll() is not None else "did not answer /health"
                raise RuntimeError(f"worker {why}: {' '.join(cmd)}\n{tail}")
            time.sleep(0.1)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        if os.environ.get("GENROUTE_WORKER_KEEP_LOGS") != "1":
            Path(log.name).unlink(missing_ok=True)

