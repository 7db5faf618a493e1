"""Sequence-level distillation with TRL: PACED weights in TRL's SFTTrainer (`PacedSFTTrainer`).

Runs start to end on the built-in arithmetic world, on a CPU, in a few minutes:

  1. problems from the built-in world, and the built-in student and teacher (trained on first
     use and cached; `--fast` picks the pair that trains in about a minute each)
  2. `paced rollout` + `paced grade` of the student (K samples each) -> `paced weight`
  3. `paced rollout` + `paced grade` of the teacher: its correct completions are the references
  4. `paced export --format trl`: prompt (as the student's rollout rendered it), completion
     (a correct teacher completion), weight
  5. `PacedSFTTrainer`: supervised fine-tuning of the student on the teacher's text, each
     example's loss (mean over its completion tokens) times its weight

    python examples/trl_sft.py work/ --fast --count 64 --max-steps 30

The same as shell commands, with TRL in your own script:

    paced rollout problems.jsonl --model STUDENT -o student/ -k 8 && paced grade student/ -o student_graded/
    paced weight student_graded/ -o weights.parquet
    paced rollout problems.jsonl --model TEACHER -o teacher/ -k 2 && paced grade teacher/ -o teacher_graded/
    paced export problems.jsonl weights.parquet -o data/ --format trl --references teacher_graded/

The last line printed is one JSON document: the folders written and the training losses.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TEMPLATE = "{prompt}\n"
"""The built-in models answer the bare problem (they were trained without an instruction)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="folder for every stage's output")
    parser.add_argument("--count", type=int, default=128, help="problems in the training pool")
    parser.add_argument("--fast", action="store_true", help="the small student/teacher pair (2-4 term problems)")
    parser.add_argument("--samples", type=int, default=8, help="K: student samples per problem")
    parser.add_argument("--max-tokens", type=int, default=96, help="longest completion")
    parser.add_argument("--max-steps", type=int, default=40, help="optimizer steps of the SFT")
    parser.add_argument("--batch-size", type=int, default=16, help="examples per optimizer step")
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    problems, student, teacher = built_in_world(args)
    common = dict(max_tokens=args.max_tokens, seed=args.seed)
    rollout_and_grade(problems, student, args.work / "student", samples=args.samples, **common)
    rollout_and_grade(problems, teacher, args.work / "teacher", samples=2, **common)

    from paced_curate.export import ExportConfig, run_export
    from paced_curate.weight import WeightConfig, run_weight

    run_weight(WeightConfig(graded=str(args.work / "student_graded"), output=str(args.work / "weights.parquet")))
    data = args.work / "data"
    exported = run_export(ExportConfig(
        problems=str(problems), weights=str(args.work / "weights.parquet"), output=str(data), format="trl",
        references=str(args.work / "teacher_graded"), seed=args.seed,
    ))
    print(f"exported {exported.num_rows} rows ({exported.dropped})", flush=True)

    losses = train(data, student, args.work / "sft", args)
    print(json.dumps({"data": str(data), "student": str(student), "trained": str(args.work / "sft" / "final"), "losses": losses}))


def built_in_world(args) -> tuple[Path, Path, Path]:
    """The problem pool (jsonl) and the built-in student and teacher folders."""
    from paced_curate.toy.pretrain import trained_model
    from paced_curate.toy.world import make_problems
    from paced_curate.toy.zoo import student_spec, teacher_spec

    terms = (2, 4) if args.fast else (2, 7)
    problems = args.work / "problems.jsonl"
    rows = [p.row() for p in make_problems(seed=args.seed + 31, count=args.count, terms=terms)]
    problems.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return problems, trained_model(student_spec(args.fast)), trained_model(teacher_spec(args.fast))


def rollout_and_grade(problems: Path, model: Path, out: Path, *, samples: int, max_tokens: int, seed: int) -> None:
    """`paced rollout` (transformers engine, no chat template) then `paced grade` into OUT/ and OUT_graded/."""
    from paced_curate.grade import GradeConfig, run_grade
    from paced_curate.rollout import RolloutConfig, run_rollout
    from paced_curate.rollout.prompts import PromptFormat

    run_rollout(RolloutConfig(
        problems=str(problems), model=str(model), output=str(out), engine="hf", samples=samples, temperature=1.0,
        max_tokens=max_tokens, seed=seed, dtype="float32", prompt_format=PromptFormat(template=TEMPLATE, chat_template="off"),
        overwrite=True,
    ))
    run_grade(GradeConfig(rollouts=str(out), output=str(out.with_name(out.name + "_graded")), overwrite=True))


def train(data: Path, student: Path, output: Path, args) -> list[float]:
    """SFT of the student on the export's train split with PacedSFTTrainer; returns the logged losses."""
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from paced_curate.integrations.trl import PacedSFTTrainer

    dataset = load_dataset("parquet", data_dir=str(data), split="train")
    config = SFTConfig(
        output_dir=str(output), max_steps=args.max_steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr, lr_scheduler_type="constant", logging_steps=1, save_strategy="no", report_to=[],
        use_cpu=True, bf16=False, seed=args.seed, disable_tqdm=True,
    )
    trainer = PacedSFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(student), args=config, train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(student),
    )
    trainer.train()
    trainer.save_model(str(output / "final"))
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


if __name__ == "__main__":
    main()
