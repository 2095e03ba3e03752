"""Benchmark: the HTTP layer's requests per second, and one job's overhead on tiny CogVideoX.

Why both: genroute polls the worker and creates jobs through it, so the server must add
little to a render; with a zero-cost fake pipeline the figures are the server alone, and
beside the tiny CogVideoX pipeline they show what a job costs beyond the pipeline call
(queue hand-off, step callbacks, MP4 encode, polling).

    python worker/bench/bench.py [--seconds 10] [--connections 32] [--jobs 20]

Uses wrk when installed (Debian package `wrk`), else a bounded httpx load loop. Sends
traffic to 127.0.0.1 only; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))

from serve import free_port, running_worker  # noqa: E402

CREATE = {"prompt": "bench", "size": "16x16", "num_frames": 1, "num_inference_steps": 1}


def start_fake() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_server.py"), "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("fake server did not start")


def run_wrk(url: str, seconds: int, connections: int, method: str = "GET", body: str | None = None) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "{method}"\n')
        if body is not None:
            script.write(f"wrk.body = {json.dumps(body)}\n")
            script.write('wrk.headers["Content-Type"] = "application/json"\n')
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
        capture_output=True, text=True, timeout=seconds + 30,
    ).stdout
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        if m is None:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": ms("50%"), "p99_ms": ms("99%"), "non2xx": float(errors.group(1)) if errors else 0.0}


async def _httpx_load(url: str, seconds: int, connections: int, method: str, body: dict | None) -> dict[str, float]:
    lat: list[float] = []
    bad = 0
    end = time.monotonic() + seconds
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=connections)) as client:

        async def one() -> None:
            nonlocal bad
            while time.monotonic() < end:
                t = time.perf_counter()
                r = await client.request(method, url, json=body)
                lat.append((time.perf_counter() - t) * 1000)
                bad += r.status_code >= 300

        await asyncio.gather(*(one() for _ in range(connections)))
    lat.sort()
    return {"rps": len(lat) / seconds, "p50_ms": lat[len(lat) // 2], "p99_ms": lat[int(len(lat) * 0.99)], "non2xx": bad}


def load(url: str, seconds: int, connections: int, method: str = "GET", body: dict | None = None) -> dict[str, float]:
    if shutil.which("wrk"):
        return run_wrk(url, seconds, connections, method, json.dumps(body) if body else None)
    return asyncio.run(_httpx_load(url, seconds, connections, method, body))


def http_layer(seconds: int, connections: int) -> list[tuple[str, dict[str, float]]]:
    proc, url = start_fake()
    try:
        vid = httpx.post(f"{url}/v1/videos", json=CREATE).json()["id"]
        time.sleep(0.5)
        rows = [
            ("GET /health", load(f"{url}/health", seconds, connections)),
            ("GET /v1/videos/{id}", load(f"{url}/v1/videos/{vid}", seconds, connections)),
            ("POST /v1/videos (JSON)", load(f"{url}/v1/videos", seconds, connections, "POST", CREATE)),
        ]
    finally:
        proc.terminate()
        proc.wait(10)
    return rows


def _render_sum_count(text: str) -> tuple[float, float]:
    found = dict(re.findall(r"^genroute_worker_render_seconds_(sum|count) ([\d.e+-]+)$", text, re.M))
    return float(found["sum"]), float(found["count"])


def job_overhead(jobs: int, steps: int) -> dict[str, float]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch  # noqa: F401

    from genroute_worker.encode import write_mp4
    from genroute_worker.pipeline import DiffusersRenderer, RenderRequest
    from tiny_models import build_cogvideox

    tmp = Path(tempfile.mkdtemp(prefix="genroute-bench-"))
    model = build_cogvideox(tmp / "cogvideox")
    fields = {"prompt": "a fox", "size": "16x16", "num_frames": 9, "num_inference_steps": steps, "seed": 1}
    req = RenderRequest("a fox", None, 16, 16, 9, steps, 6.0, 1)
    renderer = DiffusersRenderer.load(model, device="cpu", dtype="float32")
    pipe_times, enc_times = [], []
    for i in range(jobs + 2):
        t = time.perf_counter()
        frames = renderer.render(req, lambda d, n: None)
        p = time.perf_counter() - t
        t = time.perf_counter()
        write_mp4(frames[:9], tmp / "direct.mp4", 8)
        e = time.perf_counter() - t
        if i >= 2:  # the first calls warm up
            pipe_times.append(p)
            enc_times.append(e)
    del renderer
    e2e = []
    with running_worker(model, device="cpu", dtype="float32", poll_after_ms=50) as url, httpx.Client(base_url=url) as c:
        for i in range(jobs + 2):
            t = time.perf_counter()
            vid = c.post("/v1/videos", json=fields).json()["id"]
            while c.get(f"/v1/videos/{vid}").json()["status"] not in ("completed", "failed"):
                time.sleep(0.01)  # genroute polls far less often; tighter polling steals the GIL
            if i >= 2:
                e2e.append(time.perf_counter() - t)
            if i == 1:
                warm = _render_sum_count(c.get("/metrics").text)
        done = _render_sum_count(c.get("/metrics").text)
    rs = {"sum": done[0] - warm[0], "count": done[1] - warm[1]}
    shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    return {
        "pipeline_ms": med(pipe_times) * 1000,
        "encode_ms": med(enc_times) * 1000,
        "e2e_ms": med(e2e) * 1000,
        "worker_render_mean_ms": rs["sum"] / rs["count"] * 1000,
        "overhead_ms": (med(e2e) - med(pipe_times)) * 1000,
        "http_queue_ms": (statistics.mean(e2e) - rs["sum"] / rs["count"]) * 1000,
        "jobs": float(jobs),
        "steps": float(steps),
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=10, help="per HTTP load run (default 10)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--jobs", type=int, default=20, help="jobs timed on tiny CogVideoX (default 20)")
    p.add_argument("--steps", type=int, default=4, help="denoising steps per timed job (default 4)")
    p.add_argument("--skip-http", action="store_true")
    p.add_argument("--skip-job", action="store_true")
    a = p.parse_args()
    print(f"machine: {os.cpu_count()} cores, {cpu_name()}; load tool: {'wrk' if shutil.which('wrk') else 'httpx'}")
    if not a.skip_http:
        print(f"\nHTTP layer, zero-cost pipeline, {a.connections} connections, {a.seconds} s each")
        print(f"| {'request':<24} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | {'non-2xx':>7} |")
        print(f"|{'-' * 26}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
        for name, r in http_layer(a.seconds, a.connections):
            print(f"| {name:<24} | {r['rps']:>8.0f} | {r['p50_ms']:>7.2f} | {r['p99_ms']:>7.2f} | {int(r['non2xx']):>7} |")
    if not a.skip_job:
        j = job_overhead(a.jobs, a.steps)
        print(f"\nOne job on tiny CogVideoX (16x16, 9 frames, {int(j['steps'])} steps), median of {int(j['jobs'])}")
        print(f"| {'what':<46} | {'ms':>7} |")
        print(f"|{'-' * 48}|{'-' * 9}|")
        for label, key in (
            ("pipeline call alone (in process)", "pipeline_ms"),
            ("MP4 encode alone (imageio-ffmpeg)", "encode_ms"),
            ("worker's render time, mean (pipeline + encode)", "worker_render_mean_ms"),
            ("POST -> polled completed, over HTTP", "e2e_ms"),
            ("overhead beyond the pipeline call", "overhead_ms"),
            ("HTTP + queue + poll wait (mean e2e - render)", "http_queue_ms"),
        ):
            print(f"| {label:<46} | {j[key]:>7.1f} |")


if __name__ == "__main__":
    main()
