"""genroute's /v1/videos front door, driven by the official `openai` Python package, unmodified.

OpenAI shut its own video API down in September 2026 and marks these calls deprecated; the wire
shape they send (multipart create, retrieve, download, list, delete) is what gateways and
self-hosted servers keep using, and what this test checks genroute answers. The server is a real
`genroute serve` on the built-in demo policy (simulated backends: no keys, nothing to start).
"""

import os
import pathlib
import socket
import subprocess
import tempfile
import time

import openai
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("GENROUTE_BIN", str(ROOT / "target" / "debug" / "genroute"))

# The package marks every videos call deprecated (OpenAI's own service is gone); the calls
# themselves are what is under test.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client():
    port = free_port()
    data = tempfile.mkdtemp(prefix="genroute-openai-")
    proc = subprocess.Popen(
        [BIN, "serve", "--policy", str(ROOT / "policies" / "demo.yaml"),
         "--listen", f"127.0.0.1:{port}", "--data-dir", data],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.time() < deadline, "genroute serve did not start"
            time.sleep(0.05)
    yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="not-needed", max_retries=0)
    proc.terminate()
    proc.wait(timeout=40)


def finished(client, video):
    deadline = time.time() + 30
    while video.status in ("queued", "in_progress"):
        assert time.time() < deadline, f"still {video.status}"
        time.sleep(0.1)
        video = client.videos.retrieve(video.id)
    return video


def test_create_retrieve_download_and_list(client):
    video = client.videos.create(prompt="a red fox at dawn", seconds="8", size="1280x720")
    assert video.object == "video"
    assert video.status in ("queued", "in_progress", "completed")
    assert video.prompt == "a red fox at dawn"
    assert (video.seconds, video.size) == ("8", "1280x720")
    video = finished(client, video)
    assert video.status == "completed", video
    assert video.progress == 100
    assert video.completed_at is not None and video.completed_at >= video.created_at
    # genroute's additions sit under one key, outside the standard shape.
    extras = video.model_extra["genroute"]
    assert extras["status"] == "succeeded"
    assert extras["backend"] in ("veo", "pixverse", "cogvideox", "mochi")
    assert float(extras["cost_usd"]) > 0
    content = client.videos.download_content(video.id)
    mp4 = content.read()
    assert mp4[4:8] == b"ftyp", mp4[:16]
    page = client.videos.list(limit=10)
    assert video.id in [v.id for v in page.data]


def test_genroute_fields_and_an_explicit_target_ride_along(client):
    # genroute's own request fields travel as extra fields of the same form.
    fast = finished(client, client.videos.create(prompt="a quick sketch", extra_body={"priority": "speed"}))
    assert fast.status == "completed"
    assert fast.model_extra["genroute"]["backend"] != "veo", "veo does not serve speed requests"
    # A backend (or a model id) as `model` is a target, checked like a rule's target.
    veo = finished(client, client.videos.create(prompt="a cathedral", model="veo"))
    assert veo.model_extra["genroute"]["backend"] == "veo"
    with pytest.raises(openai.NotFoundError) as e:
        client.videos.create(prompt="x", model="sora-9")
    assert "neither a backend nor a model" in str(e.value)


def test_unknown_videos_are_404(client):
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve("video_that_does_not_exist")
