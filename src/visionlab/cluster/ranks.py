"""Who this process is among the processes of one run, and gathering small results from all of them.

Several processes run one job under DDP: Lightning's own launcher starts ranks 1.. as child processes
(``LOCAL_RANK``), ``srun``/submitit start every rank as a SLURM task (``SLURM_PROCID``), ``torchrun`` sets
``RANK``. Decisions that must be taken once (claim a sweep job, write the run record, start W&B) are taken by
global rank 0; the rank is read from the environment because these decisions come before DDP starts.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torch is imported where it is used: the sweep index's Hydra callback and the CLI's early checks ask only who
# this process is, before (or without) the training stack.


def _int_env(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.strip().isdigit() else None


def slurm_tasks() -> int:
    """Tasks of this SLURM job step (1 outside SLURM)."""
    return _int_env("SLURM_NTASKS") or 1


def global_rank() -> int:
    """This process's global rank before DDP starts: torchrun's RANK, a Lightning child's
    LOCAL_RANK/NODE_RANK, or the SLURM task id when the step runs several tasks; 0 for a single process."""
    if (rank := _int_env("RANK")) is not None:
        return rank
    local, node = _int_env("LOCAL_RANK"), _int_env("NODE_RANK") or 0
    if local is not None and (local or node):
        return node * 1000 + local  # only "is it 0" matters here; Lightning computes the exact rank later
    if slurm_tasks() > 1 and (procid := _int_env("SLURM_PROCID")) is not None:
        return procid
    return 0


def is_rank_zero() -> bool:
    return global_rank() == 0


def check_slurm_tasks() -> None:
    """Refuse a SLURM step of several tasks that does not say how many run on each node (``srun -n2``,
    ``#SBATCH --ntasks=2``): Lightning refuses it too, but only after its imports and once the run's record is
    started. Here it is refused before anything is written, with the form that works."""
    from visionlab.config.errors import ConfigError

    tasks = slurm_tasks()
    interactive = os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive")  # Lightning ignores SLURM then
    if tasks > 1 and "SLURM_NTASKS_PER_NODE" not in os.environ and not interactive:
        raise ConfigError(
            f"SLURM_NTASKS={tasks}: this SLURM step runs {tasks} tasks without --ntasks-per-node (srun "
            f"-n{tasks} or --ntasks={tasks}), which Lightning cannot place on devices. Run one task per "
            f"device with `srun --nodes=1 --ntasks-per-node={tasks} python train.py trainer=ddp "
            f"trainer.devices={tasks} ...` (several nodes: --nodes=N --ntasks-per-node=<devices per node> "
            "trainer.num_nodes=N)."
        )


def slurm_job_id() -> str | None:
    """The id ``scontrol requeue`` takes (array tasks as ``<array job>_<task>``)."""
    if array := os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return os.environ.get("SLURM_JOB_ID")


def gather_objects(obj) -> list:
    """``obj`` from every rank, in rank order (``[obj]`` when not distributed). For small results only
    (per-case scores, a few images): it pickles through torch.distributed, between our own processes."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def sum_over_ranks(value: float, device: torch.device | str = "cpu") -> float:
    """The sum of ``value`` over all ranks (``value`` itself when not distributed)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item())


LAUNCHER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def end_process_group(launched_ranks: bool) -> None:
    """After a run: leave no process group (and, in the process whose Lightning launcher started the other
    ranks, none of the launcher's variables) behind, so the next job of a multirun in this process starts its
    own DDP instead of reusing one whose other ranks have exited."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    if launched_ranks:
        for name in LAUNCHER_VARIABLES:
            os.environ.pop(name, None)
