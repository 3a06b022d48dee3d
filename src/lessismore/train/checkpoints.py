"""Training checkpoints under models/checkpoints/: save (atomically), find the latest, resume, prune.

A checkpoint `step-000012/` is a loadable model directory (what save_model writes: safetensors weights, only the
adapter for LoRA, the tokenizer and lessismore.json), plus what a resume needs: `optimizer/` (the AdamW state in
torch.distributed.checkpoint's format: every rank writes its own shard, which is what FSDP needs, since there each
rank holds only its slice of the state; under DDP or one process the same call writes one copy), `trainer_state.pt`
(step, the run's loss/token totals so far, elapsed seconds, the LR scheduler's state), `rng-<rank>.pt` (python and
torch RNG states, CUDA too when there is one, one file per process) and `state.json`, the readable summary: step,
epoch, whether it closes an epoch, the run identity.
Each is written into `.tmp-step-000012/` and renamed into place only when complete, so a kill mid-save leaves a
temp dir that is never picked up (and is cleared on the next save). Kept: the last `keep_last` step checkpoints and
every epoch-end one (the candidates for LIMA's checkpoint selection); older step checkpoints are deleted.
A resume only takes a checkpoint whose run identity (`run_identity`: training data, hyperparameters, base model,
world size) matches; otherwise the run starts over and the stale checkpoints are removed, and the log says what
changed (`run_changes` against the settings state.json keeps).

Why not accelerate's save_state / load_state (with ProjectConfiguration): measured, not assumed.
- It saves each prepared model's full state dict: for the demo's LoRA run that is 628 MiB per checkpoint (the
  135M base included) where the adapter is 7.0 MiB, and the result is not a loadable model folder (no tokenizer, no
  adapter_config.json, no lessismore.json), so select/copy_model would need ours anyway.
- It writes into the final folder directly: a kill -9 mid-save leaves a half checkpoint that its automatic naming
  then takes as the newest; ours renames a complete temp folder into place, which the kill -9 resume tests prove.
- The run identity (resume only the same data, params, base and world size) has no counterpart there.
The parts that are a library's job are a library's here: the sharded optimizer state is torch.distributed.checkpoint
(what accelerate uses under FSDP too), and the learning-rate schedule is a transformers scheduler whose state_dict
goes into trainer_state.pt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lessismore.errors import BadValue, NotFound

STATE_FILE = "state.json"
TRAINER_FILE = "trainer_state.pt"
OPTIMIZER_DIR = "optimizer"
PREFIX, TMP_PREFIX = "step-", ".tmp-step-"


def run_identity(data: Any, settings: dict[str, Any]) -> str:
    """16 hex digits naming a training run: the encoded examples and every setting that changes the result.

    >>> run_identity([[1, 2]], {"lr": 1e-3}) == run_identity([[1, 2]], {"lr": 1e-3}) != run_identity([[1]], {})
    True
    """
    blob = json.dumps({"data": data, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What differs between two runs' settings (state.json's "settings"), one "name old -> new" per difference;
    nested dicts (the caller's extra keys) by their own keys. `old` None: a checkpoint from before settings were kept.

    >>> run_changes({"lr": 0.01, "world_size": 8, "extra": {"base": "a"}}, {"lr": 0.01, "world_size": 4, "extra": {}})
    ['world_size 8 -> 4', 'extra.base a -> (none)']
    >>> run_changes(None, {"lr": 1})
    ['a checkpoint format this version does not resume']
    """
    if old is None:
        return ["a checkpoint format this version does not resume"]
    found = []
    for key in sorted(set(old) | set(new), key=lambda k: (list(new) + list(old)).index(k)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += [f"{key}.{change}" for change in run_changes(a, b)]
        elif a != b:
            found.append(f"{key} {'(none)' if a is None else a} -> {'(none)' if b is None else b}")
    return found


def step_dir(root: str | Path, step: int) -> Path:
    """models/checkpoints/step-000012 for step 12."""
    return Path(root) / f"{PREFIX}{step:06d}"


def list_checkpoints(root: str | Path) -> list[dict[str, Any]]:
    """Every complete checkpoint under `root`, oldest first: state.json's fields plus its `path`."""
    found = []
    for d in sorted(Path(root).glob(f"{PREFIX}*")) if Path(root).is_dir() else []:
        if (d / STATE_FILE).exists():  # written last, inside the temp dir, before the rename
            found.append({**json.loads((d / STATE_FILE).read_text(encoding="utf-8")), "path": str(d)})
    return found


def latest_matching(root: str | Path, identity: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(the newest checkpoint of run `identity`, the checkpoints of other runs)."""
    found = list_checkpoints(root)
    mine = [c for c in found if c.get("identity") == identity]
    return (mine[-1] if mine else None), [c for c in found if c.get("identity") != identity]


def rng_state() -> dict[str, Any]:
    import torch

    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    root: str | Path,
    state: dict[str, Any],
    trainer: dict[str, Any],
    write_model: Callable[[Path], None],
    write_shards: Callable[[Path], None] = lambda d: None,
    *,
    rank: int = 0,
    main: bool = True,
    barrier: Callable[[], None] = lambda: None,
) -> Path:
    """Write checkpoint `state["step"]` atomically; every process calls it (each saves its own RNG state).

    `write_model(dir)` saves the weights (rank 0 only); `write_shards(dir)` runs on every rank (a collective: the
    optimizer state's shards, `save_optimizer`); `trainer` holds the run's totals; `barrier` is the accelerator's
    wait_for_everyone, so no rank renames before all have written. The directory must be shared by the ranks.
    """
    import torch

    final, tmp = step_dir(root, state["step"]), Path(root) / f"{TMP_PREFIX}{state['step']:06d}"
    if main:
        shutil.rmtree(tmp, ignore_errors=True)  # a leftover of a save that was killed
        tmp.mkdir(parents=True)
    barrier()
    torch.save(rng_state(), tmp / f"rng-{rank}.pt")
    write_shards(tmp)
    if main:
        write_model(tmp)
        torch.save(trainer, tmp / TRAINER_FILE)
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    barrier()
    if main:
        shutil.rmtree(final, ignore_errors=True)  # the same step saved by an earlier, interrupted run of this one
        tmp.rename(final)  # atomic on one filesystem: the checkpoint appears complete or not at all
    barrier()
    return final


def load_trainer_state(ckpt: str | Path, rank: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(trainer_state.pt, this rank's RNG states) of a checkpoint. Our own files: full unpickling is safe here."""
    import torch

    d = Path(ckpt)
    trainer = torch.load(d / TRAINER_FILE, map_location="cpu", weights_only=False)
    rng_file = d / f"rng-{rank}.pt"
    return trainer, torch.load(rng_file, weights_only=False) if rng_file.exists() else {}


def save_optimizer(model: Any, optimizer: Any, directory: str | Path) -> None:
    """Write the optimizer state into `directory`/optimizer/; every rank calls it (a collective when distributed).

    `model` is the prepared one (plain, DDP- or FSDP-wrapped) and `optimizer` the torch optimizer over its
    parameters: torch names the state by parameter name, so it loads back whatever the wrapping. Each rank writes
    its shard (FSDP) or one copy is written (replicated state), without gathering the whole state anywhere.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    state = {"optimizer": get_optimizer_state_dict(model, optimizer)}
    with _single_process_is_fine():
        dcp.save(state, checkpoint_id=Path(directory) / OPTIMIZER_DIR)


def load_optimizer(model: Any, optimizer: Any, ckpt: str | Path) -> None:
    """Load a checkpoint's optimizer state into `optimizer` in place; every rank calls it, the world size as saved.

    The fresh optimizer's own state dict is the layout to fill (torch initialises it with a zero-lr step, which
    changes no weight), so each rank reads back exactly its shard.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

    d = Path(ckpt) / OPTIMIZER_DIR
    if not d.is_dir():
        raise NotFound(
            f"{ckpt}: no {OPTIMIZER_DIR}/ (a checkpoint of an older version?); delete "
            f"{Path(ckpt).parent} to start the run over"
        )
    state = {"optimizer": get_optimizer_state_dict(model, optimizer)}
    with _single_process_is_fine():
        dcp.load(state, checkpoint_id=d)
    set_optimizer_state_dict(model, optimizer, optim_state_dict=state["optimizer"])


@contextlib.contextmanager
def _single_process_is_fine() -> Iterator[None]:
    """Silence torch's warning that a one-process run (the plain `python stages/train.py`) is not distributed."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled", category=UserWarning)
        yield


def load_weights(model: Any, ckpt: str | Path) -> None:
    """Load a checkpoint's weights into `model` in place: the adapter for a peft model, else the full model."""
    from safetensors.torch import load_file

    d = Path(ckpt)
    if (d / "adapter_model.safetensors").exists():
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, load_file(d / "adapter_model.safetensors"))
        unexpected = result.unexpected_keys
    else:
        weights: dict[str, Any] = {}
        for path in sorted(d.glob("*.safetensors")):
            weights.update(load_file(path))
        unexpected = model.load_state_dict(weights, strict=False).unexpected_keys  # tied lm_head is not saved
    if unexpected:
        raise BadValue(f"{d}: weights {unexpected[:3]}... do not fit the model; delete {d.parent} to start over")


def copy_model(ckpt: str | Path, dest: str | Path) -> None:
    """Copy a checkpoint's model files (weights, tokenizer, lessismore.json) to `dest`, without its resume state."""
    resume_only = shutil.ignore_patterns("*.pt", STATE_FILE, OPTIMIZER_DIR)
    shutil.copytree(ckpt, dest, ignore=resume_only)


def prune(root: str | Path, keep_last: int) -> list[str]:
    """Delete all but the newest `keep_last` step checkpoints; epoch-end ones are always kept. Returns the removed."""
    steps = [c for c in list_checkpoints(root) if not c.get("epoch_end")]
    doomed = steps[: max(len(steps) - max(keep_last, 1), 0)]
    for c in doomed:
        shutil.rmtree(c["path"], ignore_errors=True)
    for tmp in Path(root).glob(f"{TMP_PREFIX}*"):  # a half save from a killed run: never a candidate
        shutil.rmtree(tmp, ignore_errors=True)
    return [c["path"] for c in doomed]


def remove(checkpoints: list[dict[str, Any]]) -> None:
    for c in checkpoints:
        shutil.rmtree(c["path"], ignore_errors=True)
