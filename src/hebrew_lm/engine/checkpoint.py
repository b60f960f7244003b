"""Atomic checkpoints with everything exact resume needs: full weights (gathered under FSDP), optimizer
state, RNG states and the loop's state (step, data position, counters, config fingerprint).

    ckpt-STEP/model.safetensors   weights, tied copies stored once
    ckpt-STEP/optimizer.pt        optimizer state and RNG states (loaded with weights_only=True)
    ckpt-STEP/state.json          the loop's state
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from hebrew_lm.runs import atomic_write_json, fsync_dir

log = logging.getLogger("hebrew_lm")


def checkpoint_dirs(root: Path) -> list[Path]:
    """Complete checkpoints, newest first."""
    return sorted((p for p in root.glob("ckpt-*") if p.is_dir() and not p.name.endswith(".tmp")), reverse=True)


def read_state(ckpt: Path) -> tuple[dict[str, Any] | None, Exception | None]:
    """A checkpoint's state.json, or (None, why) when it cannot be read (a torn write)."""
    try:
        return json.loads((ckpt / "state.json").read_text(encoding="utf-8")), None
    except (OSError, json.JSONDecodeError) as e:
        return None, e


def written_by_another_config(root: Path, config_fp: str) -> bool:
    """Whether any readable checkpoint under `root` was written by a run with another config (one that
    cannot resume; an unreadable one load_checkpoint skips with a warning)."""
    states = (read_state(ckpt)[0] for ckpt in checkpoint_dirs(root))
    return any(state is not None and state.get("config_fingerprint") != config_fp for state in states)


class Weights:
    """Full (unsharded) model and optimizer state, gathered from every process when FSDP shards them.
    The objective holds the model as `.model` and names its tied weights in `.tied_keys`."""

    def __init__(self, objective: torch.nn.Module, optimizer, fsdp: bool) -> None:
        self.objective, self.optimizer, self.fsdp = objective, optimizer, fsdp
        self.tied_keys = tuple(getattr(objective, "tied_keys", ()))

    def _options(self, **kw):
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, cpu_offload=True, **kw)

    def gather(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(model state without the tied keys, optimizer state); a collective call under FSDP."""
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

            full = get_model_state_dict(self.objective, options=self._options())
            model_state = {k.removeprefix("model."): v for k, v in full.items()}
            # Before the first step there is no optimizer state to save; asking for it would make
            # torch initialize it with a step of its own and shift Adam's bias correction by one.
            optim_state = (get_optimizer_state_dict(self.objective, self.optimizer, options=self._options())
                           if self.optimizer.state else {})
        else:
            model_state = {k: v.detach().cpu() for k, v in self.objective.model.state_dict().items()}
            optim_state = self.optimizer.state_dict()
        return {k: v.contiguous() for k, v in model_state.items() if k not in self.tied_keys}, optim_state

    def restore(self, model_state: dict[str, torch.Tensor], optim_state: dict[str, Any]) -> None:
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

            set_model_state_dict(self.objective, {f"model.{k}": v for k, v in model_state.items()},
                                 options=self._options(strict=False))
            if optim_state:
                set_optimizer_state_dict(self.objective, self.optimizer, optim_state, options=self._options())
            else:
                self.optimizer.state.clear()
        else:
            missing, unexpected = self.objective.model.load_state_dict(model_state, strict=False)
            if unexpected or set(missing) - set(self.tied_keys):
                raise ValueError(f"checkpoint does not fit the model: missing {missing}, unexpected {unexpected}")
            self.optimizer.load_state_dict(optim_state)


def save_checkpoint(root: Path, model_state: dict[str, torch.Tensor], optim_state: dict[str, Any],
                    state: dict[str, Any], keep: int) -> Path:
    """Write ckpt-STEP under a temporary name, fsync every file, rename; then drop the oldest."""
    from safetensors.torch import save_file

    final = root / f"ckpt-{state['step']:08d}"
    tmp = root / f"{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(model_state, str(tmp / "model.safetensors"))
    torch.save({"optimizer": optim_state, "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
               tmp / "optimizer.pt")
    atomic_write_json(tmp / "state.json", state)
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    fsync_dir(root)
    for old in checkpoint_dirs(root)[keep:]:
        shutil.rmtree(old)
    return final


def load_checkpoint(root: Path, weights: Weights, config_fp: str, stage: str = "train") -> dict[str, Any] | None:
    """Restore the newest checkpoint that loads; a corrupt one is skipped with a warning, one from
    another config is an error."""
    from safetensors.torch import load_file

    for ckpt in checkpoint_dirs(root):
        state, why = read_state(ckpt)
        if state is None:
            log.warning("%s: checkpoint %s is unreadable (%s); trying the one before", stage, ckpt, why)
            continue
        if state.get("config_fingerprint") != config_fp:
            raise ValueError(
                f"{ckpt} was written by a run with another config; choose another output_dir, "
                f"or pass --force (or --resume never) to start over"
            )
        try:
            model_state = load_file(str(ckpt / "model.safetensors"))
            extra = torch.load(ckpt / "optimizer.pt", weights_only=True)
            weights.restore(model_state, extra["optimizer"])
        except Exception as e:  # a torn or corrupted file: fall back to the previous checkpoint
            log.warning("%s: checkpoint %s is corrupt (%s); falling back to the one before", stage, ckpt, e)
            continue
        torch.set_rng_state(extra["rng_cpu"])
        if extra["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(extra["rng_cuda"])
        log.info("%s: resumed from %s (step %d)", stage, ckpt, state["step"])
        return state
    return None
