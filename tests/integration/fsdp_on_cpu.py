"""Run a script with accelerate's FSDP2 path taken on CPU processes (gloo): `accelerate launch ... fsdp_on_cpu.py
stages/train.py`. Test-only.

accelerate takes an FSDP config only on accelerators: on CPU processes it reports MULTI_CPU and wraps the model in
plain DDP, so the FSDP path (fully_shard, the optimizer pointed at the shards, gathered checkpoints, the sharded
optimizer state) would never run without a GPU. torch's FSDP2 itself runs on CPU over gloo. This shim relabels
the process state as multi-device before accelerate reads it, so accelerate's own FSDP2 code runs unchanged.
"""

from __future__ import annotations

import runpy
import sys

if __name__ == "__main__":
    from accelerate import PartialState
    from accelerate.utils import DistributedType

    state = PartialState(cpu=True)  # joins the process group over gloo, as a CPU run does
    if state.distributed_type != DistributedType.MULTI_CPU:
        raise SystemExit(f"expected accelerate's MULTI_CPU state under this launch, got {state.distributed_type}")
    PartialState._shared_state["distributed_type"] = DistributedType.MULTI_GPU  # FSDP is decided from this
    script = sys.argv[1]
    sys.argv = [script, *sys.argv[2:]]
    runpy.run_path(script, run_name="__main__")
