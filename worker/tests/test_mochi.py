"""End-to-end tests against a real worker subprocess serving the tiny Mochi 1 pipeline."""

from __future__ import annotations

import httpx
import pytest

from conftest import decode, wait_for


@pytest.mark.parametrize(("size", "frames", "as_form"), [("16x16", 7, False), ("48x32", 13, True)])
def test_mochi_renders_exact_frames_and_size(mochi: httpx.Client, size: str, frames: int, as_form: bool) -> None:
    fields = {"prompt": "a paper boat", "size": size, "num_frames": frames, "num_inference_steps": 3,
              "guidance_scale": 4.5, "negative_prompt": "blurry"}
    r = mochi.post("/v1/videos", data={k: str(v) for k, v in fields.items()}) if as_form else mochi.post(
        "/v1/videos", json=fields)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "mochi" and body["fps"] == 30  # default id: the directory name
    seen = [body["progress"]]
    done = wait_for(mochi, body["id"], {"completed", "failed"})
    seen.append(done["progress"])
    assert done["status"] == "completed", done
    n, w, h, fps = decode(mochi.get(f"/v1/videos/{body['id']}/content").content)
    assert (n, f"{w}x{h}", fps) == (frames, size, pytest.approx(30))


def test_mochi_frame_rule(mochi: httpx.Client) -> None:
    r = mochi.post("/v1/videos", json={"prompt": "x", "num_frames": 9})
    assert r.status_code == 400
    assert "6*k+1" in r.json()["error"]["message"] and "use 7 or 13" in r.json()["error"]["message"]
    # 1 s at 30 fps is 30 frames; the nearest 6k+1 count is 31.
    r = mochi.post("/v1/videos", json={"prompt": "x", "seconds": 1, "size": "16x16", "num_inference_steps": 2})
    assert r.status_code == 200 and r.json()["num_frames"] == 31
    wait_for(mochi, r.json()["id"], {"completed"})


def test_real_pipeline_error_fails_the_job_and_the_next_completes(mochi: httpx.Client) -> None:
    # MochiPipeline's linear-quadratic sigma schedule divides by zero for a single step: a
    # real error raised inside diffusers, not an injected one.
    r = mochi.post("/v1/videos", json={"prompt": "x", "size": "16x16", "num_frames": 7, "num_inference_steps": 1})
    assert r.status_code == 200
    failed = wait_for(mochi, r.json()["id"], {"failed"})
    assert failed["error"] == {"code": "render_failed", "message": "float division by zero"}
    assert failed["completed_at"] is not None and failed["progress"] == 0
    assert mochi.get(f"/v1/videos/{failed['id']}/content").status_code == 422
    r = mochi.post("/v1/videos", json={"prompt": "y", "size": "16x16", "num_frames": 7, "num_inference_steps": 2})
    assert wait_for(mochi, r.json()["id"], {"completed", "failed"})["status"] == "completed"


def test_mochi_health(mochi: httpx.Client) -> None:
    health = mochi.get("/health").json()
    assert health["pipeline"] == "MochiPipeline" and health["model"] == "mochi"
