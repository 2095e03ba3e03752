"""End-to-end tests against a real worker subprocess serving the tiny CogVideoX pipeline.

Every job here runs the real CogVideoXPipeline (loaded with from_pretrained from a directory
written by tiny_models.py) and every video is decoded back to count its frames and size.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from conftest import decode, metric, wait_for

#: Long enough (hundreds of real denoising steps) to be seen queued / in progress.
SLOW = {"prompt": "a slow river", "size": "16x16", "num_frames": 9, "num_inference_steps": 600}


def create_json(client: httpx.Client, **fields: Any) -> httpx.Response:
    return client.post("/v1/videos", json=fields)


def started(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    r = create_json(client, **fields)
    assert r.status_code == 200, r.text
    return r.json()


def wait_running(client: httpx.Client, video_id: str) -> dict[str, Any]:
    """Waits until the job is in progress with at least one step done."""
    deadline = time.monotonic() + 60
    while True:
        body = client.get(f"/v1/videos/{video_id}").json()
        if body["status"] == "in_progress" and body["progress"] > 0:
            return body
        assert body["status"] in ("queued", "in_progress"), body
        assert time.monotonic() < deadline, body
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("encoding", "size", "frames"),
    [("json", "16x16", 9), ("form", "32x16", 13), ("multipart", "16x32", 5)],
)
def test_create_poll_download(cog: httpx.Client, encoding: str, size: str, frames: int) -> None:
    fields = {"prompt": "a red fox in snow", "model": "CogVideoX-5b", "size": size,
              "num_frames": str(frames), "num_inference_steps": "3", "fps": "8", "seed": "7"}
    if encoding == "json":
        fields["num_frames"] = frames  # JSON numbers as numbers
        r = cog.post("/v1/videos", json=fields)
    elif encoding == "form":
        r = cog.post("/v1/videos", data=fields)
        assert r.request.headers["content-type"] == "application/x-www-form-urlencoded"
    else:
        r = cog.post("/v1/videos", data=fields, files={"_": (None, "")})
        assert r.request.headers["content-type"].startswith("multipart/form-data")
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["id"].startswith("video_") and created["object"] == "video"
    assert created["status"] in ("queued", "in_progress")
    assert created["model"] == "CogVideoX-5b" and created["size"] == size
    assert created["completed_at"] is None and created["error"] is None
    assert isinstance(created["created_at"], int)
    done = wait_for(cog, created["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["progress"] == 100 and isinstance(done["completed_at"], int)
    content = cog.get(f"/v1/videos/{created['id']}/content")
    assert content.status_code == 200
    assert content.headers["content-type"] == "video/mp4"
    n, w, h, fps = decode(content.content)
    assert (n, f"{w}x{h}") == (frames, size)
    assert fps == pytest.approx(8)


def test_openai_client(cog: httpx.Client) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{cog.base_url}/v1", api_key="unused", max_retries=0)
    video = client.videos.create(
        model="CogVideoX-5b", prompt="a lighthouse", seconds="4", size="16x16",
        extra_body={"num_inference_steps": 2},
    )
    assert video.status in ("queued", "in_progress") and video.seconds == "4"
    done = wait_for(cog, video.id, {"completed", "failed"})
    assert done["status"] == "completed", done
    assert client.videos.retrieve(video.id).status == "completed"
    data = client.videos.download_content(video.id).read()
    # 4 s at CogVideoX's 8 fps is 32 frames; the nearest 4k+1 count is 33.
    assert decode(data)[:3] == (33, 16, 16)


def test_seconds_become_frames(cog: httpx.Client) -> None:
    body = started(cog, prompt="waves", seconds="2", fps=4, size="16x16", num_inference_steps=2)
    assert body["seconds"] == "2" and body["num_frames"] == 9 and body["fps"] == 4
    assert wait_for(cog, body["id"], {"completed", "failed"})["status"] == "completed"
    n, _, _, fps = decode(cog.get(f"/v1/videos/{body['id']}/content").content)
    assert (n, fps) == (9, pytest.approx(4))


def test_unknown_fields_are_ignored(cog: httpx.Client) -> None:
    r = create_json(cog, prompt="a cat", size="16x16", num_frames=1, num_inference_steps=1,
                    quality="high", user="u-1", metadata={"a": 1})
    assert r.status_code == 200, r.text
    assert wait_for(cog, r.json()["id"], {"completed", "failed"})["status"] == "completed"


def test_progress_rises_step_by_step(cog: httpx.Client) -> None:
    body = started(cog, prompt="clouds", size="16x16", num_frames=9, num_inference_steps=80)
    seen: list[int] = []
    while True:
        r = cog.get(f"/v1/videos/{body['id']}")
        now = r.json()
        seen.append(now["progress"])
        if now["status"] in ("queued", "in_progress"):
            assert 0 < int(r.headers["openai-poll-after-ms"]) <= 500
        else:
            assert "openai-poll-after-ms" not in r.headers
            break
        time.sleep(0.01)
    assert now["status"] == "completed"
    assert seen == sorted(seen), seen
    middle = {p for p in seen if 0 < p < 100}
    assert len(middle) >= 3, seen
    assert seen[-1] == 100


def test_cancel_running_stops_at_next_step(cog: httpx.Client) -> None:
    body = started(cog, **SLOW)
    running = wait_running(cog, body["id"])
    assert cog.get(f"/v1/videos/{body['id']}/content").json()["error"]["code"] == "not_ready"
    r = cog.delete(f"/v1/videos/{body['id']}")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "in_progress" and r.json()["cancel_requested"] is True
    t0 = time.monotonic()
    done = wait_for(cog, body["id"], {"completed", "failed", "cancelled"}, timeout=20)
    assert done["status"] == "cancelled", done
    assert time.monotonic() - t0 < 5  # steps are ~50 ms here; the whole job would take ~30 s
    assert running["progress"] <= done["progress"] < 100
    assert "cancel_requested" not in done
    content = cog.get(f"/v1/videos/{body['id']}/content")
    assert content.status_code == 422 and content.json()["error"]["code"] == "no_content"
    # Cancelling again is idempotent: the object, unchanged.
    again = cog.delete(f"/v1/videos/{body['id']}")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_cancel_queued_is_immediate_and_queue_full_is_429(cog: httpx.Client) -> None:
    rejected_before = metric(cog, 'genroute_worker_jobs_total{outcome="rejected"}')
    head = started(cog, **SLOW)
    wait_running(cog, head["id"])
    waiting = [started(cog, prompt=f"waiting {i}", size="16x16", num_frames=1, num_inference_steps=1)
               for i in range(3)]
    assert all(w["status"] == "queued" for w in waiting)
    assert cog.get("/health").json()["queue"] == 3
    assert metric(cog, "genroute_worker_queue_length") == 3
    full = create_json(cog, prompt="one too many", size="16x16")
    assert full.status_code == 429
    assert full.json()["error"]["code"] == "queue_full"
    retry = full.headers["retry-after"]
    assert retry.isdigit() and int(retry) >= 1
    assert metric(cog, 'genroute_worker_jobs_total{outcome="rejected"}') == rejected_before + 1
    r = cog.get(f"/v1/videos/{waiting[0]['id']}/content")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_ready"
    for w in waiting:
        r = cog.delete(f"/v1/videos/{w['id']}")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert cog.get(f"/v1/videos/{w['id']}").json()["status"] == "cancelled"
    assert cog.get("/health").json()["queue"] == 0
    assert cog.delete(f"/v1/videos/{head['id']}").status_code == 202
    assert wait_for(cog, head["id"], {"cancelled", "completed", "failed"})["status"] == "cancelled"


@pytest.mark.parametrize(("marker", "code"), [("[[fault:error]]", "render_failed"), ("[[fault:oom]]", "out_of_memory")])
def test_failed_job_then_next_completes(cog: httpx.Client, marker: str, code: str) -> None:
    failed_before = metric(cog, 'genroute_worker_jobs_total{outcome="failed"}')
    bad = started(cog, prompt=f"a storm {marker}", size="16x16", num_frames=9, num_inference_steps=4)
    done = wait_for(cog, bad["id"], {"completed", "failed"})
    assert done["status"] == "failed"
    assert done["error"]["code"] == code
    assert "injected fault after step 1 of 4" in done["error"]["message"]
    r = cog.get(f"/v1/videos/{bad['id']}/content")
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_content"
    finished = cog.delete(f"/v1/videos/{bad['id']}")
    assert finished.status_code == 409 and finished.json()["error"]["code"] == "already_finished"
    assert metric(cog, 'genroute_worker_jobs_total{outcome="failed"}') == failed_before + 1
    good = started(cog, prompt="calm after the storm", size="16x16", num_frames=9, num_inference_steps=2)
    assert wait_for(cog, good["id"], {"completed", "failed"})["status"] == "completed"


@pytest.mark.parametrize(
    ("fields", "param", "hint"),
    [
        ({}, "prompt", "required"),
        ({"prompt": "   "}, "prompt", "must not be empty"),
        ({"prompt": 5}, "prompt", "must be a string"),
        ({"prompt": "x", "num_frames": 10}, "num_frames", "use 9 or 13"),
        ({"prompt": "x", "num_frames": 0}, "num_frames", "use 1 to 1000"),
        ({"prompt": "x", "num_frames": 1001}, "num_frames", "use 1 to 1000"),
        ({"prompt": "x", "num_frames": "ten"}, "num_frames", "not an integer"),
        ({"prompt": "x", "size": "20x16"}, "size", "use 16 or 32"),
        ({"prompt": "x", "size": "16by16"}, "size", "WIDTHxHEIGHT"),
        ({"prompt": "x", "size": "5000x16"}, "size", "1 to 4096"),
        ({"prompt": "x", "width": 24}, "width", "use 16 or 32"),
        ({"prompt": "x", "size": "16x16", "width": 32}, "size", "disagrees"),
        ({"prompt": "x", "num_inference_steps": 1001}, "num_inference_steps", "use 1 to 1000"),
        ({"prompt": "x", "num_inference_steps": 2.5}, "num_inference_steps", "integer"),
        ({"prompt": "x", "guidance_scale": "lots"}, "guidance_scale", "not a number"),
        ({"prompt": "x", "seconds": "-1"}, "seconds", "out of range"),
        ({"prompt": "x", "fps": True}, "fps", "boolean"),
        ({"prompt": "x", "seed": -3}, "seed", "out of range"),
        ({"prompt": "x", "input_reference": "abc"}, "input_reference", "text-to-video only"),
    ],
)
def test_validation_names_the_field(cog: httpx.Client, fields: dict[str, Any], param: str, hint: str) -> None:
    r = create_json(cog, **fields)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request" and error["param"] == param
    assert f"`{param}`" in error["message"] and hint in error["message"], error


def test_form_values_are_validated_too(cog: httpx.Client) -> None:
    r = cog.post("/v1/videos", data={"prompt": "x", "num_frames": "12"})
    assert r.status_code == 400 and "use 9 or 13" in r.json()["error"]["message"]


def test_model_mismatch(cog: httpx.Client) -> None:
    r = create_json(cog, prompt="x", model="sora-2")
    assert r.status_code == 400 and r.json()["error"]["code"] == "model_mismatch"
    assert "CogVideoX-5b" in r.json()["error"]["message"]
    for ok in ("cogvideox-5b", "genroute"):
        r = create_json(cog, prompt="x", model=ok, size="16x16", num_frames=1, num_inference_steps=1)
        assert r.status_code == 200, r.text
        wait_for(cog, r.json()["id"], {"completed"})


def test_bad_bodies(cog: httpx.Client) -> None:
    r = cog.post("/v1/videos", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = cog.post("/v1/videos", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = cog.post("/v1/videos", content=b"prompt: x", headers={"content-type": "text/yaml"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = cog.post("/v1/videos", content=json.dumps({"prompt": "x" * (2 << 20)}).encode(),
                 headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    r = cog.post("/v1/videos", content=b"--zz\r\nbroken", headers={"content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 400, r.text
    assert cog.get("/health").json()["status"] == "ok"


def test_unknown_ids_are_404(cog: httpx.Client) -> None:
    for method, path in (("GET", "/v1/videos/video_nope"), ("GET", "/v1/videos/video_nope/content"),
                         ("DELETE", "/v1/videos/video_nope")):
        r = cog.request(method, path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, path, r.text)


def test_list_newest_first_with_cursor(cog: httpx.Client) -> None:
    ids = [started(cog, prompt=f"list {i}", size="16x16", num_frames=1, num_inference_steps=1)["id"]
           for i in range(3)]
    page = cog.get("/v1/videos", params={"limit": 2}).json()
    assert page["object"] == "list" and page["has_more"] is True
    assert [v["id"] for v in page["data"]] == ids[::-1][:2]
    rest = cog.get("/v1/videos", params={"limit": 1, "after": page["data"][-1]["id"]}).json()
    assert [v["id"] for v in rest["data"]] == [ids[0]]
    assert cog.get("/v1/videos", params={"limit": 0}).status_code == 400
    assert cog.get("/v1/videos", params={"after": "video_nope"}).status_code == 400
    for i in ids:
        wait_for(cog, i, {"completed", "failed"})


def test_health_and_metrics(cog: httpx.Client) -> None:
    health = cog.get("/health").json()
    assert health["status"] == "ok" and health["model"] == "CogVideoX-5b"
    assert health["device"].startswith(("cpu", "cuda")) and health["pipeline"] == "CogVideoXPipeline"
    assert isinstance(health["queue"], int)
    completed = metric(cog, 'genroute_worker_jobs_total{outcome="completed"}')
    count = metric(cog, "genroute_worker_render_seconds_count")
    body = started(cog, prompt="metrics", size="16x16", num_frames=1, num_inference_steps=1)
    wait_for(cog, body["id"], {"completed"})
    assert metric(cog, 'genroute_worker_jobs_total{outcome="completed"}') == completed + 1
    assert metric(cog, "genroute_worker_render_seconds_count") == count + 1
    assert metric(cog, "genroute_worker_render_seconds_sum") > 0
    assert metric(cog, 'genroute_worker_jobs_total{outcome="cancelled"}') >= 0


def test_health_answers_while_rendering(cog: httpx.Client) -> None:
    body = started(cog, **SLOW)
    wait_running(cog, body["id"])
    t0 = time.perf_counter()
    for _ in range(20):
        assert cog.get("/health").json()["busy"] is True
    assert (time.perf_counter() - t0) / 20 < 0.25  # the loop is not waiting for the render
    cog.delete(f"/v1/videos/{body['id']}")
    wait_for(cog, body["id"], {"cancelled", "completed", "failed"})
