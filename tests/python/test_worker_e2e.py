"""genroute → genroute's worker → real diffusers pipelines → a real MP4 saved by genroute.

The whole path of the seed's open-source fallbacks, on this machine: tiny CogVideoX and Mochi 1
model directories with random weights (built offline by worker/tests/tiny_models.py and loaded
by the worker with `from_pretrained`, the path real weights take), a real worker process per
model, and the real `genroute` binary (`generate`, and `serve` with a job). Every video is
decoded to check the frame count and size the policy asked for. Then the ways it goes wrong:
a full queue (429, Retry-After honoured), a cancel that reaches the worker, a pipeline that
raises, and a worker killed mid-job.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("GENROUTE_BIN", str(ROOT / "target" / "debug" / "genroute"))
sys.path.insert(0, str(ROOT / "worker" / "tests"))

from serve import free_port, running_worker, worker_command, WORKER_SRC  # noqa: E402
from tiny_models import build_cogvideox, build_mochi  # noqa: E402

#: The worker's device: the CPU here; worker/scripts/gpu-check runs the same on CUDA.
DEVICE = os.environ.get("GENROUTE_WORKER_TEST_DEVICE", "cpu")
DTYPE = os.environ.get("GENROUTE_WORKER_TEST_DTYPE", "float32")
#: What each backend asks its worker for: tiny sizes that render in well under a second.
COG = {"size": "32x16", "num_frames": 9, "fps": 8, "num_inference_steps": 2}
MOCHI = {"size": "16x32", "num_frames": 7, "fps": 30, "num_inference_steps": 2}
#: Hundreds of real denoising steps: a job that is seen running.
SLOW = {"size": "16x16", "num_frames": 9, "fps": 8, "num_inference_steps": 600}
#: The key the shared CogVideoX worker wants (genroute reads it from WORKER_KEY).
WORKER_KEY = "worker-key-e2e-SECRET"
os.environ["WORKER_KEY"] = WORKER_KEY


def decode(data: bytes) -> tuple[int, str]:
    """(frames, "WxH") of an MP4, by decoding every frame with PyAV."""
    import av

    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(container.streams.video[0]))
    return len(frames), f"{frames[0].width}x{frames[0].height}"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {"cogvideox": build_cogvideox(root / "cogvideox"), "mochi": build_mochi(root / "mochi")}


@pytest.fixture(scope="module")
def cog(models):  # type: ignore[no-untyped-def]
    # With a key: genroute sends it as a Bearer token (api.key_env); /health stays open.
    with running_worker(models["cogvideox"], model_id="cogvideox-tiny", device=DEVICE,
                        dtype=DTYPE, queue_size=1, poll_after_ms=200,
                        env={"GENROUTE_WORKER_TEST_FAULTS": "1",
                             "GENROUTE_WORKER_API_KEY": WORKER_KEY}) as url:
        yield url


@pytest.fixture(scope="module")
def mochi(models):  # type: ignore[no-untyped-def]
    with running_worker(models["mochi"], model_id="mochi-tiny", device=DEVICE,
                        dtype=DTYPE, poll_after_ms=200) as url:
        yield url


def backend(name: str, url: str, model: str, params: dict, priority: int) -> str:
    return f"""
  {name}:
    priority: {priority}
    type: self_hosted
    cost: {{per_video_usd: 0.02}}
    models: [{model}]
    quality: {{score: 0.8}}
    performance: {{avg_generation_time_seconds: 2, max_generation_time_seconds: 120}}
    api:
      protocol: videos
      dialect: openai
      base_url: "{url}"
      key_env: WORKER_KEY
      poll_interval_seconds: 0.2
      parameters: {json.dumps(params)}
"""


FALLBACK = """
  simulated:
    priority: 9
    type: simulated
    cost: {per_video_usd: 0.05}
    quality: {score: 0.9}
    performance: {avg_generation_time_seconds: 1, max_generation_time_seconds: 5}
    simulation: {failure_rate: 0, time_scale: 0}
"""


def policy(tmp: pathlib.Path, *backends: str, fallback: bool = True) -> pathlib.Path:
    path = tmp / "policy.yaml"
    path.write_text(
        "budget: {monthly_budget_usd: 10.00, cost_threshold_usd: 9.00}\nbackends:"
        + "".join(backends) + (FALLBACK if fallback else "")
    )
    return path


def generate(policy_path: pathlib.Path, data: pathlib.Path, prompt: str) -> dict:
    out = subprocess.run(
        [BIN, "generate", "--policy", str(policy_path), "--prompt", prompt, "--format", "json",
         "--data-dir", str(data)],
        capture_output=True, text=True, timeout=300,
    )
    try:
        return json.loads(out.stdout)
    except ValueError:
        raise AssertionError(f"genroute generate: {out.stdout}\n{out.stderr}") from None


@contextlib.contextmanager
def serving(policy_path: pathlib.Path, data: pathlib.Path):  # type: ignore[no-untyped-def]
    """`genroute serve` on the policy; yields its base URL, stops it with SIGTERM."""
    port = free_port()
    server = subprocess.Popen(
        [BIN, "serve", "--policy", str(policy_path), "--listen", f"127.0.0.1:{port}",
         "--data-dir", str(data)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "genroute serve did not start"
                time.sleep(0.05)
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=40)


def rejected(url: str) -> float:
    """The worker's count of creates refused with 429."""
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("genroute_worker_jobs_total{") and 'outcome="rejected"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no rejected-jobs metric")


def worker_jobs(url: str) -> list[dict]:
    auth = {"Authorization": f"Bearer {WORKER_KEY}"}
    return httpx.get(f"{url}/v1/videos", params={"limit": 100}, headers=auth).json()["data"]


def test_generate_renders_cogvideox_and_mochi_into_a_saved_mp4(cog, mochi, tmp_path):  # type: ignore[no-untyped-def]
    for name, url, model, params in [("cogvideox", cog, "cogvideox-tiny", COG),
                                     ("mochi", mochi, "mochi-tiny", MOCHI)]:
        p = policy(tmp_path, backend(name, url, model, params, 1), fallback=False)
        g = generate(p, tmp_path, f"a lighthouse in a storm, by {name}")
        assert g["backend"] == name, g
        assert [a["outcome"] for a in g["attempts"]] == ["success"], g
        saved = pathlib.Path(g["video"])
        assert saved.parent.is_relative_to(tmp_path), saved
        assert decode(saved.read_bytes()) == (params["num_frames"], params["size"]), name
        assert g["cost_usd"] == 0.02
        assert WORKER_KEY not in json.dumps(g)
    # The keyed worker refuses a call without the key; genroute's carried it.
    assert httpx.get(f"{cog}/v1/videos").status_code == 401


def test_serve_runs_a_job_on_the_worker(cog, tmp_path):  # type: ignore[no-untyped-def]
    p = policy(tmp_path, backend("cogvideox", cog, "cogvideox-tiny", COG, 1), fallback=False)
    with serving(p, tmp_path / "serve") as base:
        job = httpx.post(f"{base}/v1/jobs", json={"prompt": "a paper boat"}, timeout=10)
        assert job.status_code in (200, 201, 202), job.text
        job_id = job.json()["id"]
        deadline = time.monotonic() + 120
        while True:
            record = httpx.get(f"{base}/v1/jobs/{job_id}", timeout=10).json()
            if record["status"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, record
            time.sleep(0.2)
        assert record["status"] == "succeeded", record
        # The same job through the OpenAI-style front door: the video genroute saved.
        content = httpx.get(f"{base}/v1/videos/{job_id}/content", timeout=10)
        assert content.status_code == 200, content.text
        assert decode(content.content) == (COG["num_frames"], COG["size"])


def test_a_full_queue_is_waited_out(models, tmp_path):  # type: ignore[no-untyped-def]
    # A worker with room for one job waiting: one renders, one waits, the next create is 429.
    with running_worker(models["cogvideox"], model_id="cogvideox-tiny", device=DEVICE,
                        dtype=DTYPE, queue_size=1, poll_after_ms=200) as url:
        ahead = [httpx.post(f"{url}/v1/videos", json=dict(SLOW, prompt="ahead in the queue"))
                 for _ in range(2)]
        assert [r.status_code for r in ahead] == [200, 200]
        refused = httpx.post(f"{url}/v1/videos", json=dict(COG, prompt="no room"))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        p = policy(tmp_path, backend("cogvideox", url, "cogvideox-tiny", COG, 1))
        gen = subprocess.Popen(
            [BIN, "generate", "--policy", str(p), "--prompt", "a queue that drains",
             "--format", "json", "--data-dir", str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        # genroute's own create meets the full queue ...
        deadline = time.monotonic() + 60
        while rejected(url) < 2:
            assert gen.poll() is None and time.monotonic() < deadline, gen.communicate()
            time.sleep(0.05)
        # ... then the queue drains (the jobs ahead are cancelled), and its next try is taken.
        for r in ahead:
            assert httpx.delete(f"{url}/v1/videos/{r.json()['id']}").status_code in (200, 202)
        out, err = gen.communicate(timeout=120)
        g = json.loads(out)
        # Asked again after Retry-After: served by the worker, in one attempt, no fallback.
        assert g["backend"] == "cogvideox", (g, err)
        assert len(g["attempts"]) == 1, g
        ours = [j for j in worker_jobs(url) if j["prompt"] == "a queue that drains"]
        assert [j["status"] for j in ours] == ["completed"], ours


def test_a_cancel_reaches_the_worker(models, tmp_path):  # type: ignore[no-untyped-def]
    with running_worker(models["cogvideox"], model_id="cogvideox-tiny", device=DEVICE,
                        dtype=DTYPE, poll_after_ms=200) as url:
        p = policy(tmp_path, backend("cogvideox", url, "cogvideox-tiny", SLOW, 1), fallback=False)
        with serving(p, tmp_path / "serve") as base:
            job_id = httpx.post(f"{base}/v1/jobs", json={"prompt": "nobody will watch"}).json()["id"]
            deadline = time.monotonic() + 60
            while not any(j["status"] == "in_progress" and j["progress"] > 0 for j in worker_jobs(url)):
                assert time.monotonic() < deadline, worker_jobs(url)
                time.sleep(0.05)
            answer = httpx.delete(f"{base}/v1/jobs/{job_id}", timeout=30).json()
            # It was rendering: cancelled at the worker, the money kept in doubt.
            assert answer["cancelled"] is True and answer["money"] == "in_doubt", answer
            deadline = time.monotonic() + 30
            while True:
                (job,) = worker_jobs(url)
                if job["status"] != "in_progress":
                    break
                assert time.monotonic() < deadline, job
                time.sleep(0.05)
            assert job["status"] == "cancelled", job
            assert job["progress"] < 100, job


def test_a_pipeline_that_raises_falls_back_and_the_worker_serves_on(cog, tmp_path):  # type: ignore[no-untyped-def]
    p = policy(tmp_path, backend("cogvideox", cog, "cogvideox-tiny", COG, 1))
    g = generate(p, tmp_path, "a storm [[fault:error]]")
    first = g["attempts"][0]
    assert first["backend"] == "cogvideox" and first["outcome"] != "success", g
    assert "injected fault" in first["message"], first
    assert g["backend"] == "simulated", g
    g = generate(p, tmp_path, "calm after the storm")
    assert g["backend"] == "cogvideox", g


def test_a_worker_killed_mid_job_is_in_doubt_and_falls_back(models, tmp_path):  # type: ignore[no-untyped-def]
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(WORKER_SRC), os.environ.get("PYTHONPATH")])))
    cmd = worker_command(models["cogvideox"], port, model_id="cogvideox-tiny", device=DEVICE,
                         dtype=DTYPE, poll_after_ms=200)
    log = tempfile.TemporaryFile()
    worker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert worker.poll() is None and time.monotonic() < deadline, "worker did not start"
                time.sleep(0.1)
        p = policy(tmp_path, backend("cogvideox", url, "cogvideox-tiny", SLOW, 1))
        gen = subprocess.Popen(
            [BIN, "generate", "--policy", str(p), "--prompt", "lost at sea", "--format", "json",
             "--data-dir", str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 60
        while not any(j["status"] == "in_progress" for j in worker_jobs(url)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        worker.kill()
        worker.wait()
        out, err = gen.communicate(timeout=120)
        g = json.loads(out)
        first = g["attempts"][0]
        assert first["backend"] == "cogvideox" and first.get("in_doubt") is True, g
        assert "in a row" in first["message"], first
        assert g["backend"] == "simulated", g
        # The paid-for attempt stays counted: its reservation kept in doubt.
        assert g["cost_usd"] == pytest.approx(0.07), g
    finally:
        if worker.poll() is None:
            worker.kill()
        log.close()
