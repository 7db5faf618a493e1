"""Inputs for trying examples/run_pipeline.sh without downloading anything.

Writes a MATH-style JSONL (unique_id, problem, answer, level) from the built-in arithmetic
world and prints the local folders of the built-in student and teacher (trained on first use
and cached; `--fast` picks the small pair that trains in about a minute).

    python examples/make_toy_inputs.py toy/ --fast
    TEMPLATE=$'{prompt}\\n' examples/run_pipeline.sh toy/problems.jsonl STUDENT TEACHER toy/work
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from paced_curate.toy.pretrain import trained_model
from paced_curate.toy.world import make_problems
from paced_curate.toy.zoo import student_spec, teacher_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where problems.jsonl goes")
    parser.add_argument("--count", type=int, default=200, help="number of problems")
    parser.add_argument("--fast", action="store_true", help="the small student/teacher pair (2-4 term problems)")
    args = parser.parse_args()

    args.folder.mkdir(parents=True, exist_ok=True)
    terms = (2, 4) if args.fast else (2, 6)
    rows = [
        {"unique_id": f"toy/{index:05d}", "problem": p.prompt, "answer": p.answer, "level": f"Level {len(p.terms) - 1}"}
        for index, p in enumerate(make_problems(seed=11, count=args.count, terms=terms))
    ]
    problems = args.folder / "problems.jsonl"
    problems.write_text("".join(json.dumps(row) + "\n" for row in rows))
    student, teacher = trained_model(student_spec(args.fast)), trained_model(teacher_spec(args.fast))
    print(json.dumps({"problems": str(problems), "student": str(student), "teacher": str(teacher)}))


if __name__ == "__main__":
    main()
