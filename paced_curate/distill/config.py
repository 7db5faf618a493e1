"""`DistillConfig`: every setting of `paced distill`, one field per flag, checked up front.

The checks are cheap and run before torch loads a model, so a typo fails at once.
`settings()` lists what changes the run's numbers; `--resume` refuses a run directory whose
checkpoint was made with different values and names the first one that differs.
"""

from __future__ import annotations

from dataclasses import dataclass

from paced_curate.contamination import OVERLAP_MODES
from paced_curate.distill.prompts import PROMPT_SOURCES, flags_format
from paced_curate.errors import ConfigError

LOSSES = ("fkl", "rkl", "fkl-then-rkl", "akl")
WEIGHTING = ("on", "off")
REWEIGHT = ("static", "online")
DEFAULT_HALFLIFE = 40
"""--reweight-halflife when not given (steps); docs/stages/distill.md, "Online PACED", says how it was chosen."""
DEFAULT_EXPLORE = 0.1
"""--explore when not given."""
DEFAULT_REWEIGHT_SAMPLES = 4
"""--reweight-samples when not given."""
DEVICES = ("auto", "cpu", "cuda")
NOT_IN_SETTINGS = (
    "output", "resume", "overwrite", "device", "micro_batch_size", "chunk_size", "gradient_checkpointing",
    "checkpoint_every", "keep_checkpoints", "log_every", "eval_problems", "eval_every", "eval_samples",
    "eval_max_tokens", "eval_temperature", "eval_batch_size", "eval_workers", "eval_overlap", "reweight_workers",
)
"""Fields that do not change the trained weights (paths, memory knobs, logging, evaluation): a resume may change them."""


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    """Settings of one distillation run."""

    shards: str
    """The export folder (`paced export --format native`); its train split is the training data."""
    student: str
    """Local folder of the student model (Hugging Face format); it is trained."""
    teacher: str
    """Local folder of the teacher model; it must share the student's tokenizer vocabulary."""
    output: str
    """Run directory: metrics.jsonl, checkpoints/, final/ (the trained student)."""
    loss: str = "fkl"
    """fkl (KL(teacher||student) on the references), rkl (KL(student||teacher) on student samples), fkl-then-rkl, or akl (adaptive mix of the two per token, Wu et al. 2024, on the references)."""
    switch_at: float = 0.5
    """fkl-then-rkl: fraction of the steps trained with fkl: floor(switch_at * steps), at least 1 and at most steps - 1."""
    weights: str = "on"
    """on: scale each problem's loss by its PACED weight; off: weight 1 for all (the unweighted baseline)."""
    reweight: str = "static"
    """static: the export's weights for the whole run; online: re-estimate each problem's pass rate from the student's
    own samples as it trains (rkl samples, graded; --reweight-every in a forward-KL stage) and weight by the current
    estimate (#25; distill/online.py). Needs an export that kept its weight-0 problems (--keep-zero) to let them in."""
    reweight_halflife: int | None = None
    """--reweight online: steps after which a graded sample counts half (older evidence came from an older student);
    0: no decay. Default 40."""
    explore: float | None = None
    """--reweight online, rkl stage: the chance that a weight-0 problem is sampled and graded (not trained on) when the
    data stream passes it, once per pass over the pool, so a problem the student starts to solve is noticed. Default 0.1."""
    reweight_every: int = 0
    """--reweight online, forward-KL stage (fkl, akl, the first part of fkl-then-rkl): every N steps, sample the current
    student --reweight-samples times on every training problem and grade them; 0: never."""
    reweight_samples: int | None = None
    """--reweight-every: samples per problem at each refresh (default 4)."""
    reweight_grader: str | None = None
    """--reweight online: the grader of the student's samples, as for `paced grade --grader` (default math)."""
    reweight_workers: int | None = None
    """--reweight online: grading processes (default 1, leaving the other cores to training)."""
    max_steps: int | None = None
    """Optimizer steps to train (give this or --epochs; default one epoch)."""
    epochs: float | None = None
    """Passes over the training examples (may be fractional); steps = ceil(epochs * examples / batch size)."""
    batch_size: int = 32
    """Examples per optimizer step; the loss is sum_i w_i * loss_i / batch_size."""
    micro_batch_size: int | None = None
    """Examples per forward pass (gradient accumulation); default the batch size."""
    lr: float = 1e-5
    """Peak learning rate of AdamW."""
    min_lr: float | None = None
    """Learning rate at the end of the cosine decay; default lr / 10."""
    warmup_steps: int | None = None
    """Steps of linear warm-up before the cosine decay; default min(10, a tenth of the run's steps), so a short run still reaches --lr."""
    weight_decay: float = 0.0
    """AdamW weight decay (applied to matrices only, not to norms or biases)."""
    grad_clip: float = 1.0
    """Clip the gradient norm to this value; 0 turns clipping off."""
    seed: int = 0
    """Seed of the data order, rkl sampling and the evaluation samples."""
    max_length: int | None = None
    """Longest prompt + response in tokens (default the student's position limit: max_position_embeddings, n_positions, ...)."""
    chunk_size: int = 1024
    """Response positions whose logits are computed at a time; bounds the [chunk, vocab] memory."""
    gradient_checkpointing: bool = False
    """Recompute the student's activations in backward to save memory."""
    rkl_max_tokens: int = 512
    """rkl: most tokens the student samples per prompt."""
    rkl_temperature: float = 1.0
    """rkl: sampling temperature of the student's responses. Only 1 is on-policy: the KL is always taken against the
    student's temperature-1 distribution, so other values train on samples from a different distribution (below 1
    sharper, above 1 flatter) and the loss is no longer the reverse KL's on-policy estimate."""
    prompt_format: str = "record"
    """export: render prompts as the export records the rollout did (flags that contradict the record are refused);
    flags: render them from --template, --system-prompt and --chat-template (recorded in run.json). Also for --eval."""
    template: str | None = None
    """Prompt template; `{prompt}` is replaced by the problem. Default: the export's recorded template (else the rollout's default)."""
    system_prompt: str | None = None
    """System prompt (as for `paced rollout`). Default: the export's recorded one (else none)."""
    chat_template: str | None = None
    """auto (the tokenizer's chat template when it has one), on or off (as for `paced rollout`). Default: as the export records (else auto)."""
    checkpoint_every: int = 200
    """Write a checkpoint every N steps (0: none; the final student is always saved)."""
    keep_checkpoints: int = 2
    """Keep only the newest N checkpoints (0: keep all)."""
    eval_problems: str | None = None
    """Held-out problem set: every --eval-every steps, sample and grade the current student on it."""
    eval_every: int = 100
    """Evaluate every N steps (also before the first step and after the last); 0: only those two."""
    eval_samples: int = 4
    """k: samples per held-out problem; pass@1 is averaged over them."""
    eval_max_tokens: int = 512
    """Most tokens per evaluation sample."""
    eval_temperature: float = 1.0
    """Sampling temperature of the evaluation samples."""
    eval_batch_size: int = 64
    """Sequences per generate call during evaluation."""
    eval_workers: int | None = None
    """Grading processes for the evaluation (default: number of CPUs)."""
    eval_overlap: str = "warn"
    """Held-out problems that are also training problems (same normalised prompt, or same gold answer and one prompt
    containing the other; `paced_curate.contamination`): error (refuse to train), warn or allow (say the count only)."""
    device: str = "auto"
    """auto (cuda when available), cpu or cuda. bf16 autocast on CUDA, float32 on CPU."""
    log_every: int = 10
    """Print the log line every N steps (metrics.jsonl gets every step)."""
    resume: bool = False
    """Continue from the newest complete checkpoint in the run directory."""
    overwrite: bool = False
    """Delete what an earlier run wrote in the run directory and start afresh."""

    def __post_init__(self) -> None:
        problems = []
        if self.loss not in LOSSES:
            problems.append(f"--loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.weights not in WEIGHTING:
            problems.append(f"--weights must be on or off, not {self.weights!r}")
        if self.eval_overlap not in OVERLAP_MODES:
            problems.append(f"--eval-overlap must be one of {', '.join(OVERLAP_MODES)}, not {self.eval_overlap!r}")
        problems += self._reweight_problems()
        if self.device not in DEVICES:
            problems.append(f"--device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if not 0 < self.switch_at < 1:
            problems.append(f"--switch-at must be in (0, 1), not {self.switch_at}")
        if self.max_steps is not None and self.epochs is not None:
            problems.append("give --max-steps or --epochs, not both")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"--max-steps must be at least 1, not {self.max_steps}")
        if self.epochs is not None and not self.epochs > 0:
            problems.append(f"--epochs must be > 0, not {self.epochs}")
        for name in ("batch_size", "chunk_size", "rkl_max_tokens", "eval_samples", "eval_max_tokens", "eval_batch_size", "log_every"):
            if getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            problems.append(f"--warmup-steps must be >= 0, not {self.warmup_steps}")
        if self.prompt_format not in PROMPT_SOURCES:
            problems.append(f"--prompt-format must be record or flags, not {self.prompt_format!r}")
        for name in ("checkpoint_every", "keep_checkpoints", "eval_every", "weight_decay", "grad_clip"):
            if getattr(self, name) < 0:
                problems.append(f"--{name.replace('_', '-')} must be >= 0, not {getattr(self, name)}")
        if self.micro_batch_size is not None and not 1 <= self.micro_batch_size <= self.batch_size:
            problems.append(f"--micro-batch-size must be between 1 and --batch-size ({self.batch_size}), not {self.micro_batch_size}")
        if not self.lr > 0:
            problems.append(f"--lr must be > 0, not {self.lr}")
        if self.min_lr is not None and not 0 <= self.min_lr <= self.lr:
            problems.append(f"--min-lr must be between 0 and --lr ({self.lr}), not {self.min_lr}")
        if self.max_length is not None and self.max_length < 2:
            problems.append(f"--max-length must be at least 2, not {self.max_length}")
        if not self.rkl_temperature > 0:
            problems.append(f"--rkl-temperature must be > 0, not {self.rkl_temperature}")
        if self.eval_temperature < 0:
            problems.append(f"--eval-temperature must be >= 0, not {self.eval_temperature}")
        if self.eval_workers is not None and self.eval_workers < 1:
            problems.append(f"--eval-workers must be at least 1, not {self.eval_workers}")
        if self.resume and self.overwrite:
            problems.append("--resume continues the run in the directory and --overwrite deletes it: choose one")
        if self.output == "-":
            problems.append("-o must be a folder: a run writes checkpoints and a model, it cannot go to stdout")
        try:
            flags_format(self)
        except ConfigError as error:
            problems.append(str(error))
        if problems:
            raise ConfigError("; ".join(problems))

    def _reweight_problems(self) -> list[str]:
        problems = []
        if self.reweight not in REWEIGHT:
            return [f"--reweight must be static or online, not {self.reweight!r}"]
        online_only = {"reweight_halflife": self.reweight_halflife, "explore": self.explore, "reweight_every": self.reweight_every or None,
                       "reweight_samples": self.reweight_samples, "reweight_grader": self.reweight_grader, "reweight_workers": self.reweight_workers}
        if self.reweight == "static":
            given = [f"--{name.replace('_', '-')}" for name, value in online_only.items() if value is not None]
            return [f"{', '.join(given)} apply to --reweight online only"] if given else []
        if self.weights == "off":
            problems.append("--reweight online re-estimates PACED weights; it cannot go with --weights off")
        if self.loss in ("fkl", "akl") and not self.reweight_every:
            problems.append(f"--reweight online with --loss {self.loss} has no student samples to learn from; add --reweight-every N")
        if self.loss == "rkl" and self.reweight_every:
            problems.append("--reweight-every refreshes the weights in a forward-KL stage, and --loss rkl has none (its samples are graded every step)")
        for name in ("reweight_halflife", "reweight_every"):
            if (getattr(self, name) or 0) < 0:
                problems.append(f"--{name.replace('_', '-')} must be >= 0, not {getattr(self, name)}")
        for name in ("reweight_samples", "reweight_workers"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if self.explore is not None and not 0 <= self.explore <= 1:
            problems.append(f"--explore must be in [0, 1], not {self.explore}")
        if self.reweight_grader is not None:
            from paced_curate.grade.graders import load_grader

            try:
                load_grader(self.reweight_grader)
            except ConfigError as error:
                problems.append(f"--reweight-grader: {error}")
        return problems

    @property
    def resolved_halflife(self) -> int:
        return DEFAULT_HALFLIFE if self.reweight_halflife is None else self.reweight_halflife

    @property
    def resolved_explore(self) -> float:
        return DEFAULT_EXPLORE if self.explore is None else self.explore

    @property
    def resolved_reweight_samples(self) -> int:
        return DEFAULT_REWEIGHT_SAMPLES if self.reweight_samples is None else self.reweight_samples

    @property
    def resolved_reweight_grader(self) -> str:
        return self.reweight_grader or "math"

    @property
    def resolved_min_lr(self) -> float:
        return self.lr / 10 if self.min_lr is None else self.min_lr

    @property
    def resolved_micro_batch_size(self) -> int:
        return self.batch_size if self.micro_batch_size is None else self.micro_batch_size

    def resolved_warmup_steps(self, total: int) -> int:
        """--warmup-steps, else min(10, total // 10): a run of fewer than 10 steps has none and starts at --lr."""
        return min(10, total // 10) if self.warmup_steps is None else self.warmup_steps

    def stages(self) -> tuple[str, ...]:
        """The losses this run trains with, in order."""
        return ("fkl", "rkl") if self.loss == "fkl-then-rkl" else (self.loss,)

    def settings(self) -> dict:
        """What changes the trained weights; a resume must match it (paths are compared as given)."""
        names = [name for name in self.__dataclass_fields__ if name not in NOT_IN_SETTINGS]
        settings = {name: getattr(self, name) for name in names}
        settings["min_lr"] = self.resolved_min_lr
        return settings
