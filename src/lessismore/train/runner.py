"""The train loop proper, for loop.train(): each planned optimizer step, its log row, and the checkpoints.

One optimizer step = forward/backward of this rank's micro-batches (distributed.rank_share), the gradient
all-reduced only on the last one (accelerate's no_sync), then one AdamW update at the scheduled LR (loop's
linear_schedule, a torch LR scheduler whose state is in every checkpoint). A resumed run starts at the step after
its checkpoint, with the totals it had; the plan is the same, so the remaining steps are exactly those the
interrupted run would have taken.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from lessismore.models import save_model
from lessismore.train.checkpoints import list_checkpoints, prune, save_checkpoint, save_optimizer
from lessismore.train.collate import IGNORE_INDEX, collate, collate_packed, pack
from lessismore.train.distributed import peak_memory_mb, rank_share
from lessismore.train.loss import output_owner, response_loss
from lessismore.train.steplog import StepLog

if TYPE_CHECKING:
    from lessismore.config import Train
    from lessismore.train.loop import TrainRun

Plan = list[tuple[float, list[list[int]]]]  # per optimizer step: (epoch reached after it, its micro-batches)


class Runner:
    def __init__(
        self,
        accelerator: Any,
        model: Any,
        optimizer: Any,
        schedule: Any,
        tokenizer: Any,
        usable: list[dict[str, list[int]]],
        plan: Plan,
        pad_id: int,
        spec: Train,
        wiring: TrainRun,
        run_id: str,
        settings: dict[str, Any],
    ) -> None:
        self.acc, self.model, self.optimizer, self.schedule = accelerator, model, optimizer, schedule
        self.tokenizer, self.usable, self.plan, self.pad_id = tokenizer, usable, plan, pad_id
        self.spec, self.wiring, self.run_id, self.settings = spec, wiring, run_id, settings
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        # under FSDP the output layer's weights are sharded outside the forward: the plain loss (loss.py)
        self.chunk = 0 if accelerator.distributed_type.value == "FSDP" else spec.loss_chunk
        self.owner = output_owner(accelerator.unwrap_model(model, keep_torch_compile=False))

    def run(self, resumed: dict[str, Any], desc: str) -> dict[str, Any]:
        """Take every planned step after `resumed["step"]` (0: all). Returns the run's totals."""
        from tqdm.auto import tqdm

        done = resumed.get("step", 0)
        self.losses: list[float] = list(resumed.get("losses", []))
        self.tokens, self.labels = resumed.get("tokens", 0), resumed.get("labels", 0)
        main = self.acc.is_main_process
        log = StepLog(self.wiring.log_dir if main else None, self.wiring.perf_dir, resume_step=done)
        start = time.perf_counter() - resumed.get("seconds", 0.0)  # seconds continue across a resume
        self.model.train()
        progress = self.wiring.progress and self.acc.is_main_process
        bar = tqdm(total=len(self.plan), initial=done, desc=desc, unit="step", disable=not progress)
        for step in range(done + 1, len(self.plan) + 1):
            epoch, micro = self.plan[step - 1]
            lr_now = self.schedule.get_last_lr()[0]
            t0 = time.perf_counter()
            loss, n_tokens, n_labels = self._optimizer_step(micro)
            tok_s = n_tokens / (time.perf_counter() - t0)
            self.losses.append(loss)
            self.tokens, self.labels = self.tokens + n_tokens, self.labels + n_labels
            mem = peak_memory_mb(self.acc.device.type)
            row = {"loss": loss, "lr": lr_now, "epoch": epoch, "tokens": n_tokens}
            perf = {"tokens_per_s": round(tok_s, 1), "seconds": round(time.perf_counter() - start, 2)}
            log.write(step, row | perf | {"peak_mem_mb": round(mem)})
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tok_s:.0f}")
            if self.wiring.checkpoint_dir is not None and self._checkpoint_due(step, epoch):
                self._checkpoint(step, epoch, time.perf_counter() - start)
        bar.close()
        log.close()
        self.model.eval()
        seconds = time.perf_counter() - start
        return {
            "steps": len(self.plan),
            "epochs": self.plan[-1][0],
            "tokens": self.tokens,
            "response_tokens": self.labels,
            "final_loss": self.losses[-1],
            "mean_loss_last_10": sum(self.losses[-10:]) / len(self.losses[-10:]),
            "tokens_per_s": self.tokens / seconds,
            "seconds": seconds,
            "checkpoints": list_checkpoints(self.wiring.checkpoint_dir) if self.wiring.checkpoint_dir else [],
        }

    def _optimizer_step(self, micro: list[list[int]]) -> tuple[float, int, int]:
        """Forward/backward this rank's micro-batches, then one update. Returns (mean loss, tokens, response tokens),
        all ranks together: the step's loss is normalised by the response tokens of the whole step, on every rank.
        """
        import torch

        n_labels = sum(sum(t != IGNORE_INDEX for t in self.usable[i]["labels"][1:]) for mb in micro for i in mb)
        mine = rank_share(micro, self.rank, self.world, self.spec.batch_size)
        n_tokens = sum(len(self.usable[i]["input_ids"]) for mb in mine for i in mb)
        batches = self._batches(mine) or [self._empty()]
        device = self.acc.device
        loss_sum = 0.0
        for k, batch in enumerate(batches):
            batch = {key: v.to(device) for key, v in batch.items()}
            last = k == len(batches) - 1  # the gradient all-reduce runs once a step, after the last micro-batch
            with self.acc.no_sync(self.model) if not last else contextlib.nullcontext():
                loss = response_loss(self.model, self.owner, batch, self.chunk)  # summed; divided by the step's count
                scaled = loss / n_labels
                if self.world > 1:
                    scaled = scaled * self.world  # DDP averages gradients over ranks; we want their sum
                self.acc.backward(scaled)
            loss_sum += loss.item()
        self.optimizer.step()
        self.schedule.step()  # the next step's learning rate
        self.optimizer.zero_grad(set_to_none=True)
        if self.world > 1:  # the logged loss and token count are the whole step's, over every rank
            totals = self.acc.reduce(torch.tensor([loss_sum, float(n_tokens)], device=device), reduction="sum")
            loss_sum, n_tokens = float(totals[0]), int(totals[1])
        return loss_sum / n_labels, n_tokens, n_labels

    def _batches(self, mine: list[list[int]]) -> list[dict[str, Any]]:
        """This rank's share of a step as model inputs: its micro-batches padded (collate), or with train.packing
        its examples packed into rows of at most max_tokens, batch_size rows a forward pass (collate_packed). The
        step's gradient is the same either way: the same examples, the same summed loss."""
        if not self.spec.packing:
            return [collate([self.usable[i] for i in mb], self.pad_id) for mb in mine]
        rows = [self.usable[i] for mb in mine for i in mb]
        bins = [[rows[i] for i in b] for b in pack(rows, self.spec.max_tokens)]
        size = self.spec.batch_size
        return [collate_packed(bins[k : k + size], self.pad_id) for k in range(0, len(bins), size)]

    def _empty(self) -> dict[str, Any]:
        """A rank with no example in a short last step still joins the all-reduce: one row, no label, zero loss."""
        ids = self.usable[0]["input_ids"][:8]
        return collate([{"input_ids": ids, "labels": [IGNORE_INDEX] * len(ids)}], self.pad_id)

    def _checkpoint_due(self, step: int, epoch: float) -> bool:
        every = self.spec.checkpoint_every
        return epoch == int(epoch) or step == len(self.plan) or (every > 0 and step % every == 0)

    def _checkpoint(self, step: int, epoch: float, seconds: float) -> None:
        acc, main, root = self.acc, self.acc.is_main_process, self.wiring.checkpoint_dir
        sharded = acc.distributed_type.value == "FSDP"  # a sharded model's weights must be gathered, on every rank
        state_dict = acc.get_state_dict(self.model) if sharded else None
        unwrapped = acc.unwrap_model(self.model)
        state = {
            "step": step,
            "epoch": int(epoch) if epoch == int(epoch) else epoch,
            "epoch_end": epoch == int(epoch),
            "identity": self.run_id,
            "loss": self.losses[-1],
            "steps": len(self.plan),
            "settings": self.settings,
        }
        trainer = {
            "step": step,
            "losses": self.losses,
            "tokens": self.tokens,
            "labels": self.labels,
            "seconds": seconds,
            "scheduler": self.schedule.state_dict(),
        }
        path = save_checkpoint(
            root,
            state,
            trainer,
            lambda d: save_model(unwrapped, self.tokenizer, d, self.wiring.meta, state_dict),
            lambda d: save_optimizer(self.model, self.optimizer.optimizer, d),  # accelerate's wrapper -> torch's
            rank=self.rank,
            main=main,
            barrier=acc.wait_for_everyone,
        )
        if main:
            prune(root, self.spec.keep_last)
            if self.wiring.on_checkpoint is not None:
                self.wiring.on_checkpoint({**state, "path": str(path)})
