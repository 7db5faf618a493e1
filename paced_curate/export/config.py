"""ExportConfig and ExportResult: what `paced export` is asked to do and what it wrote."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from paced_curate.contamination import OVERLAP_MODES
from paced_curate.errors import ConfigError
from paced_curate.export.formats import FORMATS, NEEDS_REFERENCES
from paced_curate.export.layout import is_file_output
from paced_curate.export.prompting import PROMPT_SOURCES
from paced_curate.export.weighting import NORMALIZATIONS, WEIGHTS_AS
from paced_curate.io import STDIO
from paced_curate.rollout.prompts import CHAT_MODES

MISSING = ("drop", "error")
DEFAULT_DATA_SOURCE = "lighteval/MATH"
"""A data source verl's `default_compute_score` grades with its MATH rule (verl.utils.reward_score.math)."""


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    """Everything `paced export` needs; fields map one to one onto its flags."""

    problems: str
    """The problem set the weights were computed for (any input the one reader takes: file, folder or -)."""
    weights: str
    """The output of `paced weight` (one row per problem), in any format the one reader takes."""
    output: str
    """The export folder (train/, val/ of Parquet files) or NAME.parquet (one file) to write; an earlier export there is replaced."""
    references: str | None = None
    """Graded teacher samples (`paced grade`'s output, or any table with an id, a completion and a verdict): correct ones become references."""
    refs_per_problem: int = 1
    """Correct teacher completions per problem, lowest sample_index first; a problem gives one row per reference."""
    format: str = "native"
    """Row layout: native (all columns), trl (prompt/completion/weight), verl (RL parquet with extra_info.weight) or
    llamafactory (LLaMA-Factory v1 messages with a float loss_weight per turn, plus its dataset_info.yaml)."""
    drop_zero: bool = True
    """Leave out problems whose weight is 0 (they would contribute nothing)."""
    rows_per_shard: int = 50_000
    """Rows per Parquet file; the last file of a split holds the rest."""
    seed: int = 0
    """Seed of the shuffle and of the train/val split."""
    val_fraction: float = 0.0
    """Share of problems (not rows) held out in val/; 0 writes no split."""
    missing: str = "drop"
    """Problems without a weight: drop (and report) or error."""
    overwrite: bool = False
    """Replace an existing output folder that is not a paced export (its contents are deleted)."""
    id_field: str | None = None
    """Problem-set column with the ids (as for `paced rollout`)."""
    prompt_field: str | None = None
    """Problem-set column with the prompt."""
    answer_field: str | None = None
    """Problem-set column with the gold answer."""
    split: str | None = None
    """Split of a Hugging Face dataset folder."""
    weights_as: str = "column"
    """column (a weight per row) or copies (each problem repeated in proportion to its weight, no weight column)."""
    copies: int | None = None
    """With --weights-as copies: rows in the train split (default: its number of problems)."""
    normalize: str = "rows"
    """rows: scale the row weights so their mean over the train split's rows is 1; none: keep them as weighed."""
    data_source: str = DEFAULT_DATA_SOURCE
    """verl's `data_source` for every row; the default selects verl's built-in MATH reward (last \\boxed{} answer)."""
    prompt_format: str = "record"
    """record: render prompts as the weights record the rollout did (prompt flags that contradict it are refused);
    flags: render them from --template, --system-prompt, --chat-template (the manifest keeps both)."""
    template: str | None = None
    """Prompt template the student was shown ({prompt} is replaced by the problem); for weights that record none, or with --prompt-format flags."""
    system_prompt: str | None = None
    """System prompt the student was shown (as for `paced rollout`)."""
    chat_template: str | None = None
    """auto, on or off: whether the student's chat template applied (as for `paced rollout`; auto needs --tokenizer)."""
    tokenizer: str | None = None
    """The student's tokenizer folder, to decide --chat-template auto."""
    eval_problems: str | None = None
    """Held-out problems to compare with the exported problems before writing (`paced_curate.contamination`, #21)."""
    eval_overlap: str = "warn"
    """With --eval: held-out problems that are also exported problems are an error, a warning, or allowed (said only)."""

    def __post_init__(self) -> None:
        problems = []
        if self.format not in FORMATS:
            problems.append(f"--format must be one of {', '.join(FORMATS)} (got {self.format!r})")
        if self.missing not in MISSING:
            problems.append(f"--missing must be drop or error (got {self.missing!r})")
        if self.refs_per_problem < 1:
            problems.append(f"--refs-per-problem must be at least 1 (got {self.refs_per_problem})")
        if self.rows_per_shard < 1:
            problems.append(f"--rows-per-shard must be at least 1 (got {self.rows_per_shard})")
        if not 0 <= self.val_fraction < 1:
            problems.append(f"--val-fraction must be in [0, 1) (got {self.val_fraction})")
        if self.format in NEEDS_REFERENCES and self.references is None:
            problems.append(f"--format {self.format} needs --references (teacher rollouts graded with 'paced grade') to fill the completion")
        if self.output == STDIO:
            problems.append("-o must be a folder or a .parquet file: an export cannot go to stdout")
        if is_file_output(self.output) and self.val_fraction > 0:
            problems.append(f"-o {self.output} writes one file, so it cannot hold a val split: pass a folder or drop --val-fraction")
        if self.weights_as not in WEIGHTS_AS:
            problems.append(f"--weights-as must be column or copies (got {self.weights_as!r})")
        if self.copies is not None and self.weights_as != "copies":
            problems.append("--copies needs --weights-as copies")
        if self.copies is not None and self.copies < 1:
            problems.append(f"--copies must be at least 1 (got {self.copies})")
        if self.normalize not in NORMALIZATIONS:
            problems.append(f"--normalize must be rows or none (got {self.normalize!r})")
        if self.eval_overlap not in OVERLAP_MODES:
            problems.append(f"--eval-overlap must be one of {', '.join(OVERLAP_MODES)} (got {self.eval_overlap!r})")
        if not self.data_source:
            problems.append("--data-source must not be empty")
        if self.prompt_format not in PROMPT_SOURCES:
            problems.append(f"--prompt-format must be record or flags (got {self.prompt_format!r})")
        if self.chat_template is not None and self.chat_template not in CHAT_MODES:
            problems.append(f"--chat-template must be one of {', '.join(CHAT_MODES)} (got {self.chat_template!r})")
        if self.template is not None and "{prompt}" not in self.template:
            problems.append("--template must contain {prompt}")
        piped = [name for name in ("problems", "weights", "references") if getattr(self, name) == STDIO]
        if len(piped) > 1:
            problems.append(f"only one input can come from stdin (-), not {' and '.join(piped)}")
        if problems:
            raise ConfigError("; ".join(problems))

    def settings(self) -> dict:
        """What shapes the rows (no paths), recorded in the manifest and hashed into the shards."""
        return {
            "format": self.format,
            "references": self.references is not None,
            "refs_per_problem": self.refs_per_problem,
            "drop_zero": self.drop_zero,
            "rows_per_shard": self.rows_per_shard,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "missing": self.missing,
            "id_field": self.id_field,
            "prompt_field": self.prompt_field,
            "answer_field": self.answer_field,
            "split": self.split,
            "weights_as": self.weights_as,
            "copies": self.copies,
            "normalize": self.normalize,
            "data_source": self.data_source,
            "prompt_format": self.prompt_format,
            "template": self.template,
            "system_prompt": self.system_prompt,
            "chat_template": self.chat_template,
        }


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    output: str
    format: str
    num_rows: int
    num_problems: int
    splits: dict = field(default_factory=dict)
    """Per split: rows, problems and files ({file, rows, sha256}, paths relative to `output`)."""
    dropped: dict = field(default_factory=dict)
    """Problems left out, by reason: no_weight, zero_weight, no_reference."""
    short_references: int = 0
    """Exported problems with fewer correct references than --refs-per-problem."""
    weight_statistics: dict = field(default_factory=dict)
    """Statistics of the problems' weights as exported (a problem's rows summed)."""
    normalizing_factor: float = 1.0
    """What every row weight was multiplied by (--normalize rows: mean 1 over the train rows)."""
    adjacent_copies: int = 0
    """With copies: neighbouring rows of the same problem that could not be separated."""

    def as_dict(self) -> dict:
        """The result as a JSON-ready dict (what `paced export --json` prints)."""
        return asdict(self)
