"""Write a complete HF-layout checkpoint directory, atomically and shard by shard."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer

from .presets import Preset, build_config, round_vocab
from .tokenizer import SpecialIds, special_ids, train_tokenizer, write_tokenizer
from .weights import TensorSpec, add_bigram, make_tensor, tensor_specs

# Bounds peak memory while writing real-shape presets: safetensors' save_file holds a shard's
# tensors and their serialised bytes at once (~2x this).
DEFAULT_MAX_SHARD_BYTES = 1024**3

# Turns (name, bf16/fp32 tensor) into the tensors stored for it (the FP8 twin adds scales).
TensorTransform = Callable[[str, torch.Tensor], dict[str, torch.Tensor]]


class CheckpointError(Exception):
    """A user-facing problem (bad preset, occupied output dir): one line, no traceback."""


def check_output_dir(out: Path) -> None:
    """Refuse to overwrite: the target must be absent or an empty directory."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CheckpointError(f"output directory {str(out)!r} exists and is not empty")


@contextmanager
def atomic_dir(out: Path) -> Iterator[Path]:
    """Yield a temp dir beside `out`; rename it to `out` only if the body succeeds.

    A crash or Ctrl-C never leaves a half-written checkpoint where a server would load it.
    """
    out = out.resolve()
    check_output_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        check_output_dir(out)  # someone may have filled it meanwhile
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
        _make_readable(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _make_readable(out: Path) -> None:
    # mkdtemp makes 0700 and safetensors files come out 0600; a checkpoint is meant to be read
    # by other users (e.g. a serving container running as non-root).
    os.chmod(out, 0o755)
    for path in out.iterdir():
        os.chmod(path, 0o644)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def plan_shards(specs: list[TensorSpec], max_shard_bytes: int) -> list[list[TensorSpec]]:
    """Group tensors, in order, into shards of at most max_shard_bytes (one tensor may exceed)."""
    shards: list[list[TensorSpec]] = [[]]
    size = 0
    for spec in specs:
        if shards[-1] and size + spec.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(spec)
        size += spec.nbytes
    return shards


Draw = Callable[[TensorSpec], torch.Tensor]


def tensor_drawer(specs: list[TensorSpec], seed: int, bigram: float = 0.0) -> Draw:
    """How each tensor's values are made: seeded noise, plus the optional bigram habit."""
    by_name = {s.name: s for s in specs}

    def draw(spec: TensorSpec) -> torch.Tensor:
        tensor = make_tensor(spec, seed)
        if bigram and spec.name == "lm_head.weight":
            embedding = make_tensor(by_name["model.word_embeddings.weight"], seed)
            live = spec.live_rows or spec.shape[0]
            tensor = add_bigram(tensor, embedding, bigram, seed, live)
        return tensor

    return draw


def write_weights(
    out_dir: Path,
    specs: list[TensorSpec],
    draw: Draw,
    *,
    max_shard_bytes: int,
    transform: TensorTransform | None = None,
) -> None:
    """Generate and save tensors one shard at a time; shards get an HF index file."""
    shards = plan_shards(specs, max_shard_bytes)
    # One metadata key only: safetensors writes its metadata map in hash order, so more keys
    # would make the file bytes differ between runs.
    meta = {"format": "pt"}
    if len(shards) == 1:
        save_file(_materialise(shards[0], draw, transform), str(out_dir / "model.safetensors"), meta)
        return
    weight_map: dict[str, str] = {}
    total = 0
    for idx, shard in enumerate(shards, start=1):
        fname = f"model-{idx:05d}-of-{len(shards):05d}.safetensors"
        tensors = _materialise(shard, draw, transform)
        save_file(tensors, str(out_dir / fname), meta)
        for name, tensor in tensors.items():
            weight_map[name] = fname
            total += tensor.numel() * tensor.element_size()
        del tensors  # free this shard before drawing the next
    write_json(
        out_dir / "model.safetensors.index.json",
        {"metadata": {"total_size": total}, "weight_map": weight_map},
    )


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread: generation is many small memory-bound ops, and on a shared
    2-core machine OpenMP's spinning threads made it >10x slower than one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _materialise(
    shard: list[TensorSpec], draw: Draw, transform: TensorTransform | None
) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    with single_thread():
        for spec in shard:
            tensor = draw(spec)
            tensors.update(transform(spec.name, tensor) if transform else {spec.name: tensor})
    return tensors


def generation_config(ids: SpecialIds) -> dict[str, Any]:
    # Both the turn end and the document end stop generation.
    return {
        "bos_token_id": ids.bos,
        "eos_token_id": [ids.eos, ids.pad],
        "pad_token_id": ids.pad,
        "transformers_version": "4.52.3",
    }


def preset_config(preset: Preset) -> tuple[dict[str, Any], Tokenizer]:
    """config.json contents for a preset and the tokenizer it is built with."""
    tok = train_tokenizer(preset.tokenizer_vocab_size)
    ids = special_ids(tok)
    vocab = preset.vocab_size or round_vocab(tok.get_vocab_size())
    if vocab < tok.get_vocab_size():
        raise CheckpointError(f"vocab_size {vocab} is smaller than the tokenizer's")
    config = build_config(
        preset, vocab_size=vocab, bos_token_id=ids.bos, eos_token_id=ids.eos, pad_token_id=ids.pad
    )
    return config, tok


def write_checkpoint(
    preset: Preset,
    out: Path,
    *,
    seed: int = 0,
    fp8: bool = False,
    bigram: float = 0.0,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Write a full checkpoint for `preset` into `out` (absent or empty); returns the final path.

    bigram > 0 gives the random model a learnable next-token habit (see weights.add_bigram),
    for speculative-decoding benchmarks; tests of correctness use the default 0.
    """
    preset.validate()
    config, tok = preset_config(preset)
    transform: TensorTransform | None = None
    if fp8:
        from model_plugin.fp8 import QUANTIZATION_CONFIG, quantize_for_checkpoint

        config["quantization_config"] = dict(QUANTIZATION_CONFIG)
        transform = quantize_for_checkpoint
    out = Path(out)
    with atomic_dir(out) as tmp:
        write_json(tmp / "config.json", config)
        ids = special_ids(tok)
        write_json(tmp / "generation_config.json", generation_config(ids))
        write_tokenizer(tok, tmp, preset.max_position_embeddings)
        specs = tensor_specs(config, live_vocab=tok.get_vocab_size())
        write_weights(
            tmp,
            specs,
            tensor_drawer(specs, seed, bigram),
            max_shard_bytes=max_shard_bytes,
            transform=transform,
        )
        # How this checkpoint was made, for benchmark records (not read by any loader).
        write_json(
            tmp / "generator.json",
            {
                "generator": "model_plugin.checkpoints",
                "preset": preset.name,
                "seed": seed,
                "num_hidden_layers": preset.num_hidden_layers,
                "fp8": fp8,
                "bigram": bigram,
                "num_nextn_predict_layers": preset.num_nextn_predict_layers,
            },
        )
    return out.resolve()
