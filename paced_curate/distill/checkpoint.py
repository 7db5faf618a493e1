"""Checkpoints of a `paced distill` run, written atomically, and the final student.

    RUN_DIR/checkpoints/step-000050/   the student (HF format) + tokenizer + trainer_state.pt
    RUN_DIR/final/                     the trained student, ready for `paced rollout --model RUN_DIR/final`

A checkpoint is written into `.step-000050.tmp-<random>/` and renamed into place when
complete, so a crash leaves either the whole checkpoint or only a temp folder, which
`latest_checkpoint` ignores. `trainer_state.pt` holds the optimizer, scheduler, RNG states
(python, numpy, torch), the data position and the run settings; it contains only tensors and
plain values, so it loads with `torch.load(weights_only=True)`.

    path = save_checkpoint(run_dir, step, student, tokenizer, trainer_state(step, optimizer, scheduler, ...), keep=2)
    path, state = latest_checkpoint(run_dir), load_trainer_state(path)
"""

from __future__ import annotations

import os
import pickle
import random
import re
import secrets
import shutil
from pathlib import Path

import numpy as np
import torch

from paced_curate.errors import InputError
from paced_curate.io import TEMP_MARK

CHECKPOINTS = "checkpoints"
FINAL = "final"
STEP_NAME = "step-{:06d}"
STEP_RE = re.compile(r"^step-(\d{6})$")
TRAINER_STATE = "trainer_state.pt"


def rng_state() -> dict:
    """The python, numpy and torch (CPU and CUDA) RNG states, as tensors and plain values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"], numpy["has_gauss"], numpy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainer_state(
    step: int, optimizer, scheduler, *, settings: dict, data_digest: str, total: int, batch_size: int, num_examples: int
) -> dict:
    """What a checkpoint needs beside the model to continue exactly: optimizer, scheduler, RNG, data position.

    The data position is a function of the step (see `data.batch_indices`); it is recorded
    so that a person can see where the run was.
    """
    from paced_curate import __version__

    seen = step * batch_size
    return {
        "step": step, "total_steps": total, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "data": {"examples_seen": seen, "epoch": seen // num_examples, "position_in_epoch": seen % num_examples,
                 "order_seed": settings["seed"], "num_examples": num_examples},
        "settings": settings, "data_digest": data_digest, "paced_version": __version__,
    }


def save_model(model, tokenizer, folder: Path) -> None:
    """Save a model (with its generation config) and tokenizer into an existing folder."""
    from paced_curate.distill.models import quiet_loading

    with quiet_loading():
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _fsync_tree(folder: Path) -> None:
    for path in [*folder.iterdir(), folder]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _publish(staging: Path, target: Path) -> None:
    """Rename a finished folder into place, replacing an older one of the same name."""
    if target.exists():
        retired = target.parent / f".{target.name}{TEMP_MARK}old-{secrets.token_hex(4)}"
        target.rename(retired)
        staging.rename(target)
        shutil.rmtree(retired)
    else:
        staging.rename(target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _staging(target: Path) -> Path:
    staging = target.parent / f".{target.name}{TEMP_MARK}{secrets.token_hex(4)}"
    staging.mkdir(parents=True)
    return staging


def save_checkpoint(run_dir: Path, step: int, model, tokenizer, trainer_state: dict, keep: int) -> Path:
    """Write checkpoint `step` atomically and delete all but the newest `keep` (0 keeps all).

    Args:
        run_dir: the run directory.
        step: optimizer steps done.
        model: the student.
        tokenizer: its tokenizer (saved beside it, so the checkpoint is a usable model folder).
        trainer_state: optimizer, scheduler, RNG, data position, settings (see `train.py`).
        keep: how many checkpoints to keep.

    Returns:
        The checkpoint folder.
    """
    target = run_dir / CHECKPOINTS / STEP_NAME.format(step)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging(target)
    try:
        save_model(model, tokenizer, staging)
        torch.save(trainer_state, staging / TRAINER_STATE)
        _fsync_tree(staging)
        _publish(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    if keep:
        for old in list_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old)
    return target


def save_final(run_dir: Path, model, tokenizer) -> Path:
    """Write the trained student to RUN_DIR/final atomically (HF model, generation config, tokenizer)."""
    target = run_dir / FINAL
    staging = _staging(target)
    try:
        save_model(model, tokenizer, staging)
        _fsync_tree(staging)
        _publish(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The complete checkpoints of a run, oldest first (temp folders are ignored)."""
    folder = run_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and STEP_RE.match(p.name) and (p / TRAINER_STATE).exists()]
    return sorted(found, key=lambda p: int(STEP_RE.match(p.name).group(1)))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def load_trainer_state(checkpoint: Path) -> dict:
    """Read a checkpoint's trainer_state.pt (tensors and plain values only)."""
    path = checkpoint / TRAINER_STATE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise InputError(
            f"{path}: cannot read the checkpoint's trainer state: {error}; delete this checkpoint to resume from an earlier one"
        ) from None
