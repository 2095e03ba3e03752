"""Tiny CogVideoX and Mochi 1 model directories with random weights, built offline.

Why: the worker must load real weights with ``DiffusionPipeline.from_pretrained``; the tests
(and genroute's own end-to-end tests) exercise that same path on directories laid out exactly
like the published ones (``model_index.json``, ``transformer/``, ``vae/``, ``scheduler/``,
``text_encoder/``, ``tokenizer/``) but small enough to render on a CPU in well under a second.
The configurations follow diffusers' own fast tests; the T5 encoder and tokenizer are made
here instead of fetched from the hub (nothing is downloaded: HF_HUB_OFFLINE holds).

Usable as a script: ``python worker/tests/tiny_models.py OUTDIR`` writes ``OUTDIR/cogvideox``
and ``OUTDIR/mochi`` and prints their paths.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: Width of the T5 encoder's output; both transformers' ``text_embed_dim`` equals it.
TEXT_DIM = 32
#: Tokens the tokenizer pads/truncates prompts to (the pipelines' ``max_sequence_length``).
MAX_TOKENS = 16


def _tokenizer_and_encoder(seed: int = 0):  # type: ignore[no-untyped-def]
    """A unigram T5 tokenizer over a tiny vocabulary and a 2-layer T5 encoder."""
    import torch
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    pieces = ["<pad>", "</s>", "<unk>", "\u2581"] + [f"\u2581{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    pieces += list("abcdefghijklmnopqrstuvwxyz0123456789.,!?-'")
    vocab = [(p, 0.0 if i < 3 else -float(i)) for i, p in enumerate(pieces)]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=MAX_TOKENS)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(pieces),
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    encoder = T5EncoderModel(config).eval()
    return tokenizer, encoder


def build_cogvideox(out: str | os.PathLike[str]) -> Path:
    """Writes a tiny CogVideoXPipeline to ``out`` and returns the path.

    Latent patches are 2x2 and the VAE scales space by 8, so height and width must be
    multiples of 16; time is compressed 4x, so ``num_frames`` of ``4k + 1`` come back exact.
    """
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
        DDIMScheduler,
    )

    out = Path(out)
    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=TEXT_DIM,
        num_layers=1,
        sample_width=2,
        sample_height=2,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=MAX_TOKENS,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    tokenizer, encoder = _tokenizer_and_encoder()
    pipe = CogVideoXPipeline(
        tokenizer=tokenizer,
        text_encoder=encoder,
        vae=vae,
        transformer=transformer,
        scheduler=DDIMScheduler(),
    )
    pipe.save_pretrained(out)
    return out


def build_mochi(out: str | os.PathLike[str]) -> Path:
    """Writes a tiny MochiPipeline to ``out`` and returns the path.

    Mochi's VAE scales space by 8 and the transformer patches 2x2 (multiples of 16); time is
    compressed 6x, so ``num_frames`` of ``6k + 1`` come back exact.
    """
    import torch
    from diffusers import (
        AutoencoderKLMochi,
        FlowMatchEulerDiscreteScheduler,
        MochiPipeline,
        MochiTransformer3DModel,
    )

    out = Path(out)
    torch.manual_seed(0)
    transformer = MochiTransformer3DModel(
        patch_size=2,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=2,
        pooled_projection_dim=16,
        in_channels=12,
        out_channels=None,
        qk_norm="rms_norm",
        text_embed_dim=TEXT_DIM,
        time_embed_dim=4,
        activation_fn="swiglu",
        max_sequence_length=MAX_TOKENS,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLMochi(
        latent_channels=12,
        out_channels=3,
        encoder_block_out_channels=(32, 32, 32, 32),
        decoder_block_out_channels=(32, 32, 32, 32),
        layers_per_block=(1, 1, 1, 1, 1),
    )
    tokenizer, encoder = _tokenizer_and_encoder()
    pipe = MochiPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    pipe.save_pretrained(out)
    return out


def build_all(out: str | os.PathLike[str]) -> dict[str, Path]:
    """Builds both under ``out`` (``cogvideox/``, ``mochi/``)."""
    out = Path(out)
    return {"cogvideox": build_cogvideox(out / "cogvideox"), "mochi": build_mochi(out / "mochi")}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python tiny_models.py OUTDIR", file=sys.stderr)
        sys.exit(2)
    for name, path in build_all(sys.argv[1]).items():
        print(f"{name}\t{path}")
