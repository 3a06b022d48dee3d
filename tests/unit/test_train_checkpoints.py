"""checkpoints.py + steplog.py: atomic saves, what is kept, in-process resume, restart on another run's checkpoints."""

from __future__ import annotations

import shutil

import pytest

from lessismore.records import Example, Message, Origin
from lessismore.train.checkpoints import TMP_PREFIX, list_checkpoints, prune, save_checkpoint
from lessismore.train.steplog import StepLog, metric_files, read_steps
from tests.specs import run_train

ORIGIN = Origin(source="test", file="test_train_checkpoints.py", row="0")
EXAMPLES = [
    Example(
        messages=(Message("user", f"Question {i}?"), Message("assistant", f"The answer {i}, because.")), origin=ORIGIN
    )
    for i in range(8)
]


def _load(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)


def _save(root, step: int, epoch_end: bool = False):
    state = {"step": step, "epoch": step, "epoch_end": epoch_end, "identity": "run"}
    return save_checkpoint(root, state, {"step": step}, lambda d: (d / "weights.txt").write_text("w"))


def test_saves_are_atomic_and_pruning_keeps_epoch_ends_and_the_last_steps(tmp_path):
    for step in range(1, 7):
        _save(tmp_path, step, epoch_end=step % 3 == 0)
    (tmp_path / f"{TMP_PREFIX}000007").mkdir()  # a save killed halfway: never listed
    assert [c["step"] for c in list_checkpoints(tmp_path)] == [1, 2, 3, 4, 5, 6]
    removed = prune(tmp_path, keep_last=2)
    assert sorted(p.rsplit("-", 1)[1] for p in removed) == ["000001", "000002"]
    assert [c["step"] for c in list_checkpoints(tmp_path)] == [3, 4, 5, 6]
    assert not list(tmp_path.glob(f"{TMP_PREFIX}*"))
    assert (tmp_path / "step-000004" / "weights.txt").exists() and (tmp_path / "step-000004" / "rng-0.pt").exists()


def _row(step: int, loss: float) -> dict[str, float]:
    perf = {"tokens_per_s": 100.0 + step, "seconds": float(step), "peak_mem_mb": 400.0}
    return {"loss": loss, "lr": 1e-3, "epoch": step / 5, "tokens": 10} | perf


def test_step_log_resume_keeps_rows_up_to_the_step_and_continues(tmp_path):
    run, perf = tmp_path / "train", tmp_path / "train_perf"
    log = StepLog(run, perf)
    for step in range(1, 6):
        log.write(step, _row(step, 1.0 / step))
    log.close()
    log = StepLog(run, perf, resume_step=3)  # killed after step 5, resumed from the checkpoint at step 3
    log.write(4, _row(4, 0.125))
    log.close()
    rows, problems = read_steps(run, perf)
    assert problems == [] and [int(r["step"]) for r in rows] == [1, 2, 3, 4]  # no duplicate, no gap
    assert rows[-1]["loss"] == 0.125 and rows[2]["loss"] == pytest.approx(1 / 3) and rows[-1]["tokens_per_s"] == 104
    # the run's values and the machine's live apart: only the latter differ between two runs of one commit
    assert [p.stem for p in metric_files(run)] == ["epoch", "loss", "lr", "tokens"]
    assert [p.stem for p in metric_files(perf)] == ["peak_mem_mb", "seconds", "tokens_per_s"]
    assert "seconds" not in (run / "metrics.json").read_text()
    header, *lines = (run / "plots" / "metrics" / "loss.tsv").read_text().splitlines()
    assert header == "step\tloss" and len(lines) == 4  # DVCLive's own format, what `dvc plots` reads
    StepLog(run, perf).close()
    assert read_steps(run, perf) == ([], [])  # a fresh run starts clean


def test_a_log_with_no_step_still_leaves_the_folders_dvc_yaml_declares(tmp_path):
    # a run resumed after its last step logs nothing; `dvc repro` still needs every declared out
    run, perf = tmp_path / "train", tmp_path / "train_perf"
    StepLog(run, perf, resume_step=12).close()
    assert (run / "plots" / "metrics").is_dir() and (perf / "plots" / "metrics").is_dir()


def test_in_process_resume_matches_and_another_run_starts_over(tiny_model_dir, tmp_path, capsys):
    import torch

    kw = dict(
        max_tokens=64,
        method="lora",
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.1,
        epochs=2,
        batch_size=2,
        grad_accum=2,
        lr=1e-2,
        lr_end=1e-3,
        seed=3,
        checkpoint_every=1,
    )
    model, tok = _load(tiny_model_dir)
    full_model, full = run_train(model, tok, EXAMPLES, checkpoint_dir=tmp_path / "a", log_dir=tmp_path / "log", **kw)
    assert full["steps"] == 4 and [c["step"] for c in full["checkpoints"]] == [1, 2, 3, 4]  # 2, 4: epoch ends

    # the same run interrupted after step 2: drop the later checkpoints and re-run from a fresh model
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for step in (3, 4):
        shutil.rmtree(tmp_path / "b" / f"step-00000{step}")
    seen = []
    model, tok = _load(tiny_model_dir)
    resumed_model, resumed = run_train(
        model, tok, EXAMPLES, checkpoint_dir=tmp_path / "b", on_checkpoint=seen.append, **kw
    )
    assert resumed["resumed_from_step"] == 2 and [c["step"] for c in seen] == [3, 4]
    assert seen[-1]["epoch_end"] and seen[-1]["epoch"] == 2
    assert resumed["final_loss"] == pytest.approx(full["final_loss"], abs=1e-6)
    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name

    # another run (a different lr and cap) finds checkpoints of a different identity: says what changed, removes them,
    # starts over
    model, tok = _load(tiny_model_dir)
    other = run_train(model, tok, EXAMPLES, checkpoint_dir=tmp_path / "b", **{**kw, "lr": 5e-3, "max_steps": 1})[1]
    out = capsys.readouterr().out
    assert (
        other["resumed_from_step"] == 0
        and "(changed: max_steps 0 -> 1; lr 0.01 -> 0.005): removed; starting over" in out
    ), out
    assert [c["step"] for c in list_checkpoints(tmp_path / "b")] == [1]


def test_gradient_checkpointing_changes_memory_not_losses(tiny_model_dir):
    losses = []
    for flag in (False, True):
        model, tok = _load(tiny_model_dir)
        _, summary = run_train(
            model, tok, EXAMPLES, max_tokens=64, method="full", max_steps=2, lr=1e-2, gradient_checkpointing=flag
        )
        losses.append(summary["final_loss"])
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)
