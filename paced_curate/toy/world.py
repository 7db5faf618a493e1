"""The built-in world: three arithmetic skills from reasoning-gym, with worked solutions.

Every problem comes from reasoning-gym's `basic_arithmetic` generator, deterministic by seed,
and is written out as a short worked solution ending in `\\boxed{}` (lines without spaces keep
sequences short, which is most of the training cost). The skills play different parts in the
comparison (README, "The built-in example"):

- `add`, chains of one-digit additions: the **frontier**. Difficulty is the number of terms;
  a narrow student slips now and then on each step, so its pass rate falls along the ladder
  and spreads over [0, 1]. Both models are pretrained on it.
- `mul`, a two-digit number times a one-digit number: **beyond reach**. The teacher is
  pretrained on it; the student never sees a product, and its skill (partial products plus
  three-digit sums) is more than it can acquire in a distillation budget, so its pass rate is 0.
- `sub`, the difference of two one-digit numbers: the **probe**. The student is pretrained on
  it (the narrow student solves 0.1-0.2); it is never in the pool and the teacher never learns it,
  so a drop in it after distillation is forgetting (the part MMLU plays in the paper).

    Calculate 4 + 1 + 7.   ->  4+1=5          Calculate 37 * 8.  ->  30*8=240      Calculate 3 - 8.  ->  3-8=-5
                               5+7=12                                7*8=56                                \\boxed{45}
                               \\boxed{12}                           240+56=296
                                                                     \\boxed{296}

    problems = make_problems(seed=0, count=100, terms=(2, 8))          # additions
    pool = make_mixture(seed=1, count=600, shares={"add": 0.75, "mul": 0.25}, terms=(2, 7))
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# The built-in student's pass rate falls along the addition ladder; "hard" is its far end.
DIFFICULTY = {2: "easy", 3: "easy", 4: "medium", 5: "medium", 6: "hard", 7: "hard"}
SKILLS = ("add", "mul", "sub")
"""add: the frontier (pool); mul: beyond the student's reach (pool); sub: the probe (never in the pool)."""
OPERATORS = {"add": "+", "mul": "*", "sub": "-"}


@dataclass(frozen=True)
class Problem:
    """One problem with its worked solution; `terms` are the operands in order."""

    problem_id: str
    prompt: str
    answer: str
    terms: list[int]
    skill: str = "add"

    @property
    def solution(self) -> str:
        return worked_solution(self.terms, self.skill)

    def row(self) -> dict:
        """The problem as a row of the problems schema, with skill and difficulty columns passed through."""
        if self.skill == "add":
            difficulty = DIFFICULTY.get(len(self.terms), "hard")
        else:
            difficulty = {"mul": "beyond", "sub": "probe"}[self.skill]
        return {
            "problem_id": self.problem_id, "prompt": self.prompt, "answer": self.answer,
            "skill": self.skill, "num_terms": len(self.terms), "difficulty": difficulty,
        }


def worked_solution(terms: list[int], skill: str = "add") -> str:
    """The worked solution of a problem of `skill` with operands `terms`.

    add: left-to-right running sums, one line per addition. mul (one operand of two digits,
    one of one digit): the tens and units partial products, then their sum. sub: one line.
    """
    if skill == "add":
        lines, total = [], terms[0]
        for term in terms[1:]:
            lines.append(f"{total}+{term}={total + term}")
            total += term
        return "\n".join(lines + [f"\\boxed{{{total}}}"])
    if skill == "mul":
        a, b = terms
        swap = a < 10  # decompose whichever operand has two digits, keeping the written order
        big, small = (b, a) if swap else (a, b)
        tens, units = big - big % 10, big % 10
        product = (lambda x: f"{small}*{x}") if swap else (lambda x: f"{x}*{small}")
        lines = [f"{product(tens)}={tens * small}", f"{product(units)}={units * small}", f"{tens * small}+{units * small}={a * b}"]
        return "\n".join(lines + [f"\\boxed{{{a * b}}}"])
    if skill == "sub":
        return f"{terms[0]}-{terms[1]}={terms[0] - terms[1]}\n\\boxed{{{terms[0] - terms[1]}}}"
    raise ValueError(f"skill must be one of {SKILLS}, not {skill!r}")


def make_problems(seed: int, count: int, terms: tuple[int, int], prefix: str = "arith") -> list[Problem]:
    """`count` addition chains with `terms[0]` to `terms[1]` terms, from reasoning-gym, deterministic by seed.

    Args:
        seed: reasoning-gym dataset seed; different seeds give different problems.
        count: number of problems.
        terms: inclusive range of the number of terms.
        prefix: problem ids are f"{prefix}-{seed}-{index}".
    """
    entries = _generate(seed, count, dict(min_terms=terms[0], max_terms=terms[1], min_digits=1, max_digits=1, operators=("+",)))
    return [_problem(f"{prefix}-{seed}-{index:06d}", entry, "add") for index, entry in enumerate(entries)]


def make_skill_problems(skill: str, seed: int, count: int, terms: tuple[int, int] = (2, 7), prefix: str | None = None) -> list[Problem]:
    """`count` problems of one skill (see the module docstring), deterministic by seed.

    Args:
        skill: "add", "mul" or "sub".
        seed: reasoning-gym dataset seed.
        count: number of problems.
        terms: inclusive range of the number of terms (add only; mul and sub have two).
        prefix: problem ids are f"{prefix}-{seed}-{index}" (default: the skill).

    Raises:
        ValueError: an unknown skill.
    """
    prefix = prefix or skill
    if skill == "add":
        return make_problems(seed, count, terms, prefix=prefix)
    if skill == "mul":
        # 11..99 times 2..9 only: reasoning-gym draws each operand's digit count, we keep those pairs
        settings = dict(min_terms=2, max_terms=2, min_digits=1, max_digits=2, operators=("*",))
        keep = lambda values: sorted(values)[0] in range(2, 10) and sorted(values)[1] in range(11, 100)  # noqa: E731
    elif skill == "sub":
        settings = dict(min_terms=2, max_terms=2, min_digits=1, max_digits=1, operators=("-",))
        keep = lambda values: True  # noqa: E731
    else:
        raise ValueError(f"skill must be one of {SKILLS}, not {skill!r}")
    entries, size = [], count
    while len(entries) < count:
        size *= 3
        entries = [e for e in _generate(seed, size, settings) if keep(_operands(e, skill))][:count]
    return [_problem(f"{prefix}-{seed}-{index:06d}", entry, skill) for index, entry in enumerate(entries)]


def make_mixture(seed: int, count: int, shares: dict[str, float], terms: tuple[int, int] = (2, 7), prefix: str = "mix") -> list[Problem]:
    """`count` problems mixing skills in the given shares, shuffled, deterministic by seed.

    Args:
        seed: seed of every skill's generator (offset per skill) and of the shuffle.
        count: number of problems.
        shares: skill -> share of the problems (normalised; the last skill takes the rounding).
        terms: inclusive range of the number of terms of the additions.
        prefix: problem ids are f"{prefix}{skill}-{seed}-{index}" before the shuffle.
    """
    total = sum(shares.values())
    names = list(shares)
    counts = [round(count * shares[name] / total) for name in names[:-1]]
    counts.append(count - sum(counts))
    problems = []
    for offset, (skill, n) in enumerate(zip(names, counts)):
        if n > 0:
            problems += make_skill_problems(skill, seed * 7 + SKILLS.index(skill), n, terms, prefix=f"{prefix}{skill}")
    random.Random(seed).shuffle(problems)
    return problems


def _generate(seed: int, size: int, settings: dict) -> list[dict]:
    import reasoning_gym

    dataset = reasoning_gym.create_dataset(
        "basic_arithmetic", size=size, seed=seed, allow_parentheses=False, allow_negation=False, whitespace="single", **settings
    )
    return [dataset[index] for index in range(size)]


def _operands(entry: dict, skill: str) -> list[int]:
    return [int(part) for part in entry["metadata"]["expression"].split(f" {OPERATORS[skill]} ")]


def _problem(problem_id: str, entry: dict, skill: str) -> Problem:
    values = _operands(entry, skill)
    problem = Problem(problem_id, entry["question"], entry["answer"], values, skill)
    assert problem.solution.endswith(f"\\boxed{{{int(entry['answer'])}}}"), entry
    return problem


def reasoning_gym_grader(completion: str, gold: str):
    """reasoning-gym's own scorer as a paced grader (for `paced grade --audit`).

    Scores the last boxed answer (or the last line) with `basic_arithmetic`'s `score_answer`;
    full credit is correct, anything less is incorrect.
    """
    import reasoning_gym

    from paced_curate.grade.graders import last_boxed

    answer = last_boxed(completion)
    if answer is None:
        lines = [line.strip() for line in completion.strip().splitlines() if line.strip()]
        answer = lines[-1] if lines else None
    if answer is None:
        return "no_answer", None
    dataset = reasoning_gym.create_dataset("basic_arithmetic", size=1, seed=0)
    score = dataset.score_answer(answer, {"answer": gold, "metadata": {}})
    return ("correct" if score >= 1.0 else "incorrect"), answer
