"""Resumable checkpoints and the shipped export, in safetensors + JSON only (no pickle, no torch.load).

A checkpoint directory holds the model (``save_pretrained``), ``optimizer.safetensors`` (AdamW moments,
flattened as ``<param index>.<name>``) and ``state.json`` (step, settings fingerprint). The export writes
the model with fp16 weights and ``config.json`` asking for float32 on load, so CPUs compute in float32.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from sentence_transformers import CrossEncoder

CHECKPOINT_PREFIX = "step-"


def torch_module(ce: CrossEncoder) -> Any:
    """The loaded transformer inside ``ce`` (typed ``Optional`` by sentence-transformers)."""
    if ce.model is None:
        raise ValueError("the CrossEncoder holds no model")
    return ce.model


def save_checkpoint(
    ce: CrossEncoder, optimizer: torch.optim.Optimizer, directory: Path, state: dict[str, Any], *, keep: int = 2
) -> Path:
    """Write ``directory/step-N`` atomically (temp dir + rename) and prune older ones."""
    from safetensors.torch import save_file

    step = int(state["step"])
    final = directory / f"{CHECKPOINT_PREFIX}{step:07d}"
    tmp = directory / f".tmp-{CHECKPOINT_PREFIX}{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ce.save(str(tmp), safe_serialization=True)
    opt = optimizer.state_dict()
    tensors = {
        f"{idx}.{name}": value.detach().contiguous()
        for idx, slots in opt["state"].items()
        for name, value in slots.items()
        if hasattr(value, "detach")
    }
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    groups = [
        {k: v for k, v in g.items() if k != "params"} | {"params": list(g["params"])} for g in opt["param_groups"]
    ]
    (tmp / "optimizer_groups.json").write_text(json.dumps(groups, default=float), encoding="utf-8")
    (tmp / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in list_checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX))


def latest_checkpoint(directory: Path) -> Path | None:
    found = [p for p in list_checkpoints(directory) if (p / "state.json").is_file()]
    return found[-1] if found else None


def load_optimizer_state(optimizer: torch.optim.Optimizer, checkpoint: Path) -> None:
    """Restore AdamW moments written by :func:`save_checkpoint` into a freshly built optimizer."""
    from safetensors.torch import load_file

    tensors = load_file(str(checkpoint / "optimizer.safetensors"))
    groups = json.loads((checkpoint / "optimizer_groups.json").read_text(encoding="utf-8"))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def read_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))


def export_fp16(ce: CrossEncoder, out: Path, *, extra: dict[str, Any] | None = None) -> Path:
    """Save ``ce`` to ``out`` with fp16 weights (half the size) that load back as float32.

    ``extra`` is written to ``out/reranker.json`` (settings the pipeline reads beside the weights).
    The model in memory is left in float32.
    """
    import torch

    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = torch_module(ce)
    model.to(torch.float16)
    try:
        ce.save(str(tmp), safe_serialization=True)
    finally:
        model.to(torch.float32)
    config_path = tmp / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["dtype"] = "float32"
    config.pop("torch_dtype", None)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    st_config = tmp / "config_sentence_transformers.json"
    if st_config.is_file():  # predict() returns the raw logit, the score the fusion weight was tuned on
        settings = json.loads(st_config.read_text(encoding="utf-8"))
        settings["activation_fn"] = "torch.nn.modules.linear.Identity"
        st_config.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for junk in ("README.md",):
        (tmp / junk).unlink(missing_ok=True)
    if extra is not None:
        (tmp / "reranker.json").write_text(json.dumps(extra, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
