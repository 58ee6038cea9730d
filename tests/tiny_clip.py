"""A tiny randomly initialised CLIP in Hugging Face layout, built in about a second.

Deterministic for a seed. It proves the dual-encoder plumbing (two towers exported and run
apart, one space, one key) where no real CLIP weights can be had offline; its rankings are
checked against the same model run by transformers, not against meaning.
"""

from __future__ import annotations

import json
from pathlib import Path

WORDS = "a photo of red green blue square circle cat dog on white black background".split()
SPECIALS = ["<|pad|>", "<|unk|>", "<|startoftext|>", "<|endoftext|>"]
SIDE = 32
DIM = 16


def build_tiny_clip(path: Path, *, seed: int = 0) -> Path:
    """Write config, weights, tokenizer.json and preprocessor_config.json of a tiny CLIP."""
    import torch
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import CLIPConfig, CLIPModel

    path.mkdir(parents=True, exist_ok=True)
    vocab = {w: i for i, w in enumerate([*SPECIALS[:3], *WORDS, SPECIALS[3]])}
    eos = vocab["<|endoftext|>"]  # the highest id, as in CLIP's own vocabulary
    tok = Tokenizer(WordLevel(vocab, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", vocab["<|startoftext|>"]), ("<|endoftext|>", eos)],
    )
    tok.save(str(path / "tokenizer.json"))
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "eos_token_id": eos,
            "pad_token_id": 0,
            "bos_token_id": vocab["<|startoftext|>"],
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": SIDE,
            "patch_size": 8,
        },
        projection_dim=DIM,
    )
    torch.manual_seed(seed)
    CLIPModel(config).eval().save_pretrained(str(path), safe_serialization=True)
    processor = {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": SIDE},
        "resample": 3,
        "do_center_crop": True,
        "crop_size": {"height": SIDE, "width": SIDE},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
    }
    (path / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))
    return path
