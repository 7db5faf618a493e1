"""`paced distill` on several devices: FSDP2 under torchrun, and the one-process run, behind one interface (#17).

    torchrun --nproc-per-node 8 -m paced_curate distill data/ --student S --teacher T -o runs/paced --loss fkl-then-rkl

`start(config)` returns `Local` in a plain process and `Fsdp` under torchrun (WORLD_SIZE > 1);
train.py calls the same methods on either, so there is one training loop.

What FSDP changes, and what it must not:
- The global batch of step s is the same `batch_indices(s, B, ...)` as in one process; rank r
  trains on every world-th example of it (B must divide by the world size), in micro-batches.
- The PACED loss of each micro-batch is sum_i w_i * loss_i / B with the GLOBAL batch size B,
  exactly as in one process; the weights are never renormalised per rank. The ranks' gradients
  are summed (FSDP's gradient divide factor is set to 1 instead of its default, the mean), so
  the update equals the one-process update up to float summation order.
- rkl samples are drawn on each rank for its own share, each row from its own seed
  (seed, step, row, copy), so a row's sample does not depend on which rank draws it; a row
  twice in one global batch has its copies numbered over the whole batch (`data.global_batch`).
- The student is one FSDP unit (`fully_shard` on a wrapper whose forward runs a whole KL or
  sampling call): its parameters, gradients and AdamW state are sharded across ranks between
  steps and gathered for the duration of a call. One unit, not one per layer, because rkl
  sampling makes a data-dependent number of forward passes per rank, and per-layer units
  would need the same number of all-gathers on every rank. For the same reason `generate`
  runs with synced_gpus=False (models.py): every rank makes the same collective calls (one
  gather per sampling or KL call, one per micro-batch), however many tokens it samples.
- The teacher is replicated on every rank, frozen (no gradients, no optimizer state).
- Checkpoints: torch.distributed.checkpoint (DCP) shards of the student and optimizer in
  checkpoints/step-N/dcp/, plus trainer_state.pt (step, scheduler, RNG, settings) written by
  rank 0; resumable under the same world size. The final student is gathered once and saved
  by rank 0 in Hugging Face format to RUN_DIR/final.
Not supported under torchrun: --eval-problems (the evaluation hook), and resuming a
checkpoint of a one-process run (or the other way round).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from paced_curate.distill.checkpoint import TRAINER_STATE, _fsync_tree, _publish, _staging, list_checkpoints, save_checkpoint, save_final
from paced_curate.distill.models import OutputLayers, response_kl, sample_responses
from paced_curate.errors import ConfigError, InputError

DCP_FOLDER = "dcp"


def world_size() -> int:
    """Processes in this run (torchrun's WORLD_SIZE; 1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def start(config, device: torch.device):
    """`Fsdp` under torchrun with more than one process, else `Local` on `device`.

    Raises:
        ConfigError: under torchrun, --eval-problems is given or --batch-size is not a multiple
            of the world size, or --device cuda without enough GPUs.
    """
    if world_size() == 1:
        return Local(device)
    return Fsdp(config, device)


class Local:
    """One process: what `paced distill` always did."""

    rank, world, is_main = 0, 1, True

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def run_on_main(self, fn, *args):
        """`fn(*args)` (on rank 0 under FSDP, its result or error then shared with every rank)."""
        return fn(*args)

    def student_from(self, checkpoint: Path | None) -> str | None:
        """Where the student's weights load from: the checkpoint's HF folder."""
        return str(checkpoint) if checkpoint else None

    def prepare(self, student, teacher, heads: OutputLayers, vocab_size: int) -> None:
        self.student, self.teacher, self.heads = student, teacher, heads

    def share(self, examples: list) -> list:
        """This rank's share of the global batch."""
        return examples

    def sample(self, prompts, seeds, budgets, **options) -> list[list[int]]:
        return sample_responses(self.student, prompts, seeds, budgets, **options)

    def kl(self, batch, stage: str, chunk_size: int) -> torch.Tensor:
        return response_kl(self.student, self.teacher, batch, stage, chunk_size, self.heads)

    def total(self, *values: torch.Tensor) -> list[torch.Tensor]:
        """Sums over ranks."""
        return list(values)

    def clip_grad_norm(self, parameters, max_norm: float) -> float:
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm).item()

    def load_optimizer(self, optimizer, state: dict, checkpoint: Path) -> None:
        optimizer.load_state_dict(state["optimizer"])

    def save_checkpoint(self, run_dir: Path, step: int, tokenizer, state: dict, keep: int, optimizer) -> Path:
        return save_checkpoint(run_dir, step, self.student, tokenizer, state, keep)

    def save_final(self, run_dir: Path, tokenizer) -> Path:
        return save_final(run_dir, self.student, tokenizer)

    def close(self) -> None:
        pass


class _StudentCall(torch.nn.Module):
    """The FSDP root: one forward = one KL or sampling call, with the student's parameters gathered throughout."""

    def __init__(self, student, teacher, vocab_size: int) -> None:
        super().__init__()
        self.student = student
        self._teacher = (teacher,)  # a tuple, not a submodule: FSDP must neither shard nor gather the teacher
        self.vocab_size = vocab_size

    def forward(self, mode: str, *args, **options):
        if mode == "sample":
            return sample_responses(self.student, *args, **options)
        teacher = self._teacher[0]
        # Built here, where the gathered parameters are the module's: FSDP swaps them in per call.
        heads = OutputLayers.of(self.student, teacher, vocab_size=self.vocab_size)
        return response_kl(self.student, teacher, *args, heads)


class Fsdp(Local):
    """torchrun with WORLD_SIZE > 1: FSDP2 on the student (see the module docstring)."""

    def __init__(self, config, device: torch.device) -> None:
        import torch.distributed as dist

        self.config = config
        self.rank, self.world = int(os.environ["RANK"]), world_size()
        self.is_main = self.rank == 0
        problems = []
        if config.eval_problems is not None:
            problems.append("--eval-problems is not supported under torchrun; evaluate RUN_DIR/final afterwards")
        if config.batch_size % self.world:
            problems.append(f"--batch-size {config.batch_size} must be a multiple of the number of processes ({self.world})")
        if problems:
            raise ConfigError("; ".join(problems))
        if device.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            if local >= torch.cuda.device_count():
                raise ConfigError(f"torchrun local rank {local}: only {torch.cuda.device_count()} CUDA devices")
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        self.device = device
        self.owns_group = not dist.is_initialized()
        if self.owns_group:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if not self.is_main:
            from paced_curate.report import console

            console().quiet = True  # one copy of the log: rank 0's

    def run_on_main(self, fn, *args):
        import torch.distributed as dist

        box = [None]
        if self.is_main:
            try:
                box[0] = ("ok", fn(*args))
            except Exception as error:  # shared, so every rank stops with the same error
                box[0] = ("error", error)
        dist.broadcast_object_list(box, src=0)
        kind, value = box[0]
        if kind == "error":
            raise value
        return value

    def student_from(self, checkpoint: Path | None) -> str | None:
        return None  # the weights come from the DCP shards (`load_optimizer`)

    def prepare(self, student, teacher, heads: OutputLayers, vocab_size: int) -> None:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(self.device.type, (self.world,))
        self.student, self.teacher = student, teacher
        self.call = fully_shard(_StudentCall(student, teacher, vocab_size), mesh=mesh)
        # Sum the ranks' gradients: each rank's loss is already divided by the global batch size.
        self.call.set_gradient_divide_factor(1.0)
        # A plain SUM reduce-scatter: gloo has no PREMUL_SUM, and a factor of 1 needs no scaling anyway.
        self.call.set_force_sum_reduction_for_comms(True)

    def share(self, examples: list) -> list:
        return examples[self.rank :: self.world]

    def sample(self, prompts, seeds, budgets, **options) -> list[list[int]]:
        return self.call("sample", prompts, seeds, budgets, **options)

    def kl(self, batch, stage: str, chunk_size: int) -> torch.Tensor:
        return self.call("kl", batch, stage, chunk_size)

    def total(self, *values: torch.Tensor) -> list[torch.Tensor]:
        import torch.distributed as dist

        stacked = torch.stack([v.detach().double().to(self.device) for v in values])
        dist.all_reduce(stacked)
        return list(stacked.to(values[0].dtype).unbind())

    def clip_grad_norm(self, parameters, max_norm: float) -> float:
        from torch.distributed.tensor import DTensor

        norm = torch.nn.utils.clip_grad_norm_(list(parameters), max_norm)
        if isinstance(norm, DTensor):
            norm = norm.full_tensor()
        return norm.item()

    def _state(self, optimizer) -> dict:
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_state, optimizer_state = get_state_dict(self.call, optimizer)
        return {"model": model_state, "optimizer": optimizer_state}

    def load_optimizer(self, optimizer, state: dict, checkpoint: Path) -> None:
        """Load the student's and the optimizer's shards of `checkpoint` (DCP) into this rank."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import set_state_dict

        folder = checkpoint / DCP_FOLDER
        if not folder.is_dir():
            raise InputError(f"{checkpoint}: has no {DCP_FOLDER}/ folder, so it was not written under torchrun; resume it in one process")
        if state.get("world_size") != self.world:
            raise InputError(f"{checkpoint}: was written by {state.get('world_size')} processes; resume it with as many (not {self.world})")
        shards = self._state(optimizer)
        dcp.load(shards, checkpoint_id=str(folder))
        set_state_dict(self.call, optimizer, model_state_dict=shards["model"], optim_state_dict=shards["optimizer"])

    def save_checkpoint(self, run_dir: Path, step: int, tokenizer, state: dict, keep: int, optimizer) -> Path:
        """Every rank writes its DCP shard into one staging folder; rank 0 adds the trainer state and publishes it."""
        import torch.distributed as dist
        import torch.distributed.checkpoint as dcp

        from paced_curate.distill.checkpoint import CHECKPOINTS, STEP_NAME

        target = run_dir / CHECKPOINTS / STEP_NAME.format(step)
        staging = self.run_on_main(_make_staging, target)
        dcp.save(self._state(optimizer), checkpoint_id=str(staging / DCP_FOLDER))
        dist.barrier()
        if self.is_main:
            # The optimizer's state lives in the DCP shards; rank 0's own shard would be a half.
            torch.save(state | {"optimizer": None, "world_size": self.world}, staging / TRAINER_STATE)
            tokenizer.save_pretrained(staging)
            _fsync_tree(staging)
            _publish(staging, target)
            if keep:
                for old in list_checkpoints(run_dir)[:-keep]:
                    shutil.rmtree(old)
        dist.barrier()
        return target

    def save_final(self, run_dir: Path, tokenizer) -> Path:
        """Gather the whole student once and save it from rank 0 in Hugging Face format."""
        import torch.distributed as dist
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(self.call, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        final = None
        if self.is_main:
            from transformers import AutoModelForCausalLM

            from paced_curate.distill.models import quiet_loading

            with quiet_loading():
                model = AutoModelForCausalLM.from_pretrained(self.config.student, dtype=torch.float32)
            prefix = "student."
            model.load_state_dict({k[len(prefix) :]: v for k, v in full.items()})
            final = save_final(run_dir, model, tokenizer)
        dist.barrier()
        return final or run_dir / "final"

    def close(self) -> None:
        import torch.distributed as dist

        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _make_staging(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return _staging(target)

