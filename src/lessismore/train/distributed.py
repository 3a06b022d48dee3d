"""The train loop's link to accelerate: one process (`python stages/train.py`) or many (`accelerate launch`).

`make_accelerator` builds the Accelerator that places the model, wraps it for DDP/FSDP, skips the gradient
all-reduce on all but the last micro-batch of an optimizer step (`no_sync`) and autocasts to bf16 when the
precision asks for it. Launched plainly, it is a single process on the model's device, and the loop does exactly
what it did before accelerate: the same ops in the same order, the same losses.
Data parallelism splits each optimizer step's examples between the ranks (`rank_share`); the effective batch is
batch_size x grad_accum x world_size. Only rank 0 writes files (`is_main_process`).
Configs for `accelerate launch` live in infra/accelerate/ (single GPU, DDP, FSDP, 2-process CPU DDP on gloo).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def use_bf16(precision: str, device_type: str) -> bool:
    """Whether to autocast to bfloat16: "fp32" never, "bf16" always, "auto" where the hardware does it natively.

    On a CPU with AVX512-BF16/AMX, bf16 autocast about doubles LoRA training speed (measured: 420 vs 220 tok/s on
    SmolLM2-135M, 2 cores); without it, emulated bf16 is slower than fp32, hence "auto" checks.

    >>> use_bf16("fp32", "cuda"), use_bf16("bf16", "cpu")
    (False, True)
    """
    if precision not in ("fp32", "bf16", "auto"):
        raise ValueError(f"precision {precision!r}: use 'fp32', 'bf16' or 'auto'")
    if precision != "auto":
        return precision == "bf16"
    import torch

    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a private probe: treat its absence as "no"
        return False


def make_accelerator(precision: str) -> tuple[Any, bool]:
    """(Accelerator, bf16?) for this process. `precision` (params train.precision) decides the mixed precision,
    not the launch config: the configs in infra/accelerate/ leave it at "no" so params.yaml stays the one place.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    deterministic_torch()
    state = _state()  # reads the env that `accelerate launch` sets; a plain run is one process
    bf16 = use_bf16(precision, state.device.type)
    mixed = "bf16" if bf16 else "no"
    if state.num_processes == 1 and AcceleratorState._shared_state.get("_mixed_precision", mixed) != mixed:
        # accelerate keeps one global state per process; a single process that trains twice with different
        # precisions (tests, notebooks) must start it afresh. Launched runs train once per process.
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=mixed, cpu=state.device.type == "cpu"), bf16


def deterministic_torch() -> None:
    """Deterministic kernels wherever torch has them, so two runs of one commit write the same weights (#21).

    On CPU it costs nothing measurable (a LoRA and a full run of a 4-layer 576-wide Llama, 32 examples: 13.8 s and
    11.3 s with it, 13.2-15.3 s and 14.4-14.8 s without; the weights were bit-identical either way). On CUDA it
    swaps atomics-based kernels (index_add, scatter in backward) for ordered ones, and cuBLAS needs a fixed
    workspace for that, set before its first call. warn_only: an op with no deterministic kernel warns, never fails.
    The thread count is not pinned: 1, 2, 4 and 8 threads gave bit-identical weights on this torch (measured on the
    same runs); what does change them is the CPU's kernel set (torch.backends.cpu.get_cpu_capability(), recorded in
    metrics/timing/train.json): AVX2 against the portable kernels differed by up to 4.2e-5 in every tensor.
    """
    import os

    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


MMAP_THRESHOLD = 128 * 1024  # bytes: glibc's own default before its dynamic threshold grows it


def return_freed_memory() -> None:
    """Make freed tensor memory go back to the OS (glibc only; elsewhere nothing changes).

    glibc serves allocations under its mmap threshold from heap arenas, and that threshold grows (up to 32 MiB)
    each time a large block is freed: a training step's activations then land in arenas, and what the backward frees
    stays in the process. Measured on a LoRA step of SmolLM2-135M (2 micro-batches of 4 x 512 tokens, fp32, 2
    cores): peak RSS 8,626 -> 5,674 MiB with the threshold pinned at 128 KiB, the same 28.0 s; RSS falls back to
    1,727 MiB after each backward instead of staying at 5,792. Pinning it (mallopt M_MMAP_THRESHOLD) stops the growth.
    """
    import ctypes
    import ctypes.util

    libc = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(libc).mallopt if libc else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): their allocators behave otherwise
        return
    if mallopt is not None:
        mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD


def machine() -> dict[str, Any]:
    """What decides the last bits of the weights besides code, params and data: the torch build and the CPU kernel
    set (and the GPU, where one trains). Written with the timings: it differs between machines, not between runs."""
    import torch

    facts = {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name()
    return facts | {"threads": torch.get_num_threads()}


def _state() -> Any:
    """accelerate's process state; CPU-only when there is no GPU, so that torchrun-launched processes (what
    `accelerate launch` starts for more than one process) join over gloo instead of looking for NCCL."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def is_main_process() -> bool:
    """True on rank 0 (and in a plain single-process run): the only process that writes files."""
    return _state().is_main_process


def rank_share(micro: Sequence[Sequence[int]], rank: int, world: int, batch_size: int) -> list[list[int]]:
    """This rank's micro-batches of one optimizer step: every `world`-th example of the step (which is sorted by
    length, so each rank gets a similar mix), re-cut into micro-batches. With one process, the step unchanged.

    >>> rank_share([[0, 1], [2, 3], [4]], 0, 1, 2)
    [[0, 1], [2, 3], [4]]
    >>> rank_share([[0, 1], [2, 3], [4]], 1, 2, 2)
    [[1, 3]]
    """
    mine = [i for mb in micro for i in mb][rank::world]
    return [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]


def peak_memory_mb(device_type: str) -> float:
    """Peak memory so far, in MiB: allocated tensors on a GPU, the process's max resident set size on a CPU."""
    if device_type == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10
