"""One short render per real-weights directory (GPU machines; see scripts/gpu-check).

Skipped unless GENROUTE_WORKER_REAL_MODELS lists pipeline directories (colon-separated),
e.g. a local THUDM/CogVideoX-5b or genmo/mochi-1-preview. Same code path as the tiny models:
``python -m genroute_worker --model DIR`` with from_pretrained.
"""

from __future__ import annotations

import os

import httpx
import pytest

from conftest import DEVICE, decode, start, wait_for

REAL = [p for p in os.environ.get("GENROUTE_WORKER_REAL_MODELS", "").split(":") if p]


@pytest.mark.skipif(not REAL, reason="GENROUTE_WORKER_REAL_MODELS is not set")
@pytest.mark.parametrize("model_dir", REAL)
def test_real_weights_render(model_dir: str) -> None:
    flags = {"dtype": os.environ.get("GENROUTE_WORKER_TEST_DTYPE", "bfloat16"), "vae_tiling": True}
    if DEVICE.startswith("cuda"):
        flags["cpu_offload"] = True
    with start(model_dir, start_timeout=1200, **flags) as url, httpx.Client(base_url=url, timeout=60) as c:
        # 13 frames are valid for both rules (4k+1 and 6k+1); 480x480 suits both VAEs.
        r = c.post("/v1/videos", json={"prompt": "a red fox running through snow", "size": "480x480",
                                       "num_frames": 13, "num_inference_steps": 8, "seed": 1})
        assert r.status_code == 200, r.text
        done = wait_for(c, r.json()["id"], {"completed", "failed"}, timeout=1800)
        assert done["status"] == "completed", done
        n, w, h, _ = decode(c.get(f"/v1/videos/{done['id']}/content").content)
        assert (n, w, h) == (13, 480, 480)
