"""The command line: bad flags and environment end with one clear line, no traceback;
retention drops finished jobs and their files (a worker of its own with a short retention).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import start, wait_for
from serve import WORKER_SRC


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(WORKER_SRC), **(env or {})}
    return subprocess.run([sys.executable, "-m", "genroute_worker", *args], capture_output=True, text=True,
                          env=full, timeout=120)


@pytest.mark.parametrize(
    ("args", "env", "code", "says"),
    [
        ((), {}, 2, "--model DIR is required"),
        (("--model", "/nonexistent/CogVideoX-5b"), {}, 2, "no such directory"),
        (("--model", "{tmp}", "--queue-size", "0"), {}, 2, "--queue-size must be at least 1"),
        (("--model", "{tmp}", "--dtype", "int8"), {}, 2, "invalid choice: 'int8'"),
        (("--model", "{tmp}", "--port", "70000"), {}, 2, "--port must be 1 to 65535"),
        (("--model", "{tmp}",), {"GENROUTE_WORKER_PORT": "eighty"}, 2, "GENROUTE_WORKER_* variable has a bad value"),
        (("--model", "{tmp}",), {"GENROUTE_WORKER_CPU_OFFLOAD": "maybe"}, 2, "GENROUTE_WORKER_CPU_OFFLOAD='maybe'"),
        (("--model", "{tmp}",), {}, 1, "no model_index.json"),
    ],
)
def test_bad_flags_and_env(tmp_path: Path, args: tuple[str, ...], env: dict[str, str], code: int, says: str) -> None:
    r = run_cli(*(a.replace("{tmp}", str(tmp_path)) for a in args), env=env)
    assert r.returncode == code, r.stderr
    assert says in r.stderr, r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_cpu_offload_without_cuda_is_refused(models: dict[str, Path]) -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    r = run_cli("--model", str(models["cogvideox"]), "--cpu-offload")
    assert r.returncode == 1 and "--cpu-offload needs a CUDA device" in r.stderr
    assert "Traceback" not in r.stderr


def test_retention_drops_jobs_and_files(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "videos"
    with start(models["cogvideox"], retention=1, output_dir=out, vae_slicing=True, vae_tiling=True,
               env={"GENROUTE_WORKER_FPS": "12"}) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            body = client.post("/v1/videos", json={"prompt": "x", "size": "16x16", "num_frames": 1,
                                                   "num_inference_steps": 1}).json()
            assert body["fps"] == 12  # from the environment
            wait_for(client, body["id"], {"completed"})
            assert (out / f"{body['id']}.mp4").is_file()
            deadline = time.monotonic() + 10
            while client.get(f"/v1/videos/{body['id']}").status_code != 404:
                assert time.monotonic() < deadline, "still there after retention"
                time.sleep(0.1)
            assert not (out / f"{body['id']}.mp4").exists()
