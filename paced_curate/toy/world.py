"""The built-in arithmetic world: chains of small additions from reasoning-gym, with worked solutions.

Problems come from reasoning-gym's `basic_arithmetic` (additions of one-digit numbers, so the
operands are 0 to 10), deterministic by seed. Difficulty is the number of terms: each term
adds one step of work, so a model that slips now and then fails long chains far more often
than short ones, which spreads a student's pass rates over [0, 1].

A worked solution adds the terms left to right, one short line per step, and ends in
`\\boxed{}`. Lines without spaces keep sequences short, which is most of the training cost:

    Calculate 4 + 1 + 7.        ->   4+1=5
                                     5+7=12
                                     \\boxed{12}

    problems = make_problems(seed=0, count=100, terms=(2, 8))
"""

from __future__ import annotations

from dataclasses import dataclass

# The built-in student's pass rate falls along the ladder; "hard" is its far end.
DIFFICULTY = {2: "easy", 3: "easy", 4: "medium", 5: "medium", 6: "hard", 7: "hard"}


@dataclass(frozen=True)
class Problem:
    """One arithmetic problem with its worked solution."""

    problem_id: str
    prompt: str
    answer: str
    terms: list[int]

    @property
    def solution(self) -> str:
        return worked_solution(self.terms)

    def row(self) -> dict:
        """The problem as a row of the problems schema, with difficulty columns passed through."""
        return {
            "problem_id": self.problem_id,
            "prompt": self.prompt,
            "answer": self.answer,
            "num_terms": len(self.terms),
            "difficulty": DIFFICULTY.get(len(self.terms), "hard"),
        }


def worked_solution(terms: list[int]) -> str:
    """Left-to-right running sums, one line per addition, then the boxed answer."""
    lines, total = [], terms[0]
    for term in terms[1:]:
        lines.append(f"{total}+{term}={total + term}")
        total += term
    return "\n".join(lines + [f"\\boxed{{{total}}}"])


def make_problems(seed: int, count: int, terms: tuple[int, int], prefix: str = "arith") -> list[Problem]:
    """`count` problems with `terms[0]` to `terms[1]` terms, from reasoning-gym, deterministic by seed.

    Args:
        seed: reasoning-gym dataset seed; different seeds give different problems.
        count: number of problems.
        terms: inclusive range of the number of terms.
        prefix: problem ids are f"{prefix}-{seed}-{index}".
    """
    import reasoning_gym

    dataset = reasoning_gym.create_dataset(
        "basic_arithmetic", size=count, seed=seed, min_terms=terms[0], max_terms=terms[1],
        min_digits=1, max_digits=1, operators=("+",), allow_parentheses=False, allow_negation=False, whitespace="single",
    )
    problems = []
    for index in range(count):
        entry = dataset[index]
        values = [int(part) for part in entry["metadata"]["expression"].split(" + ")]
        assert sum(values) == int(entry["answer"]), entry
        problems.append(Problem(f"{prefix}-{seed}-{index:06d}", entry["question"], entry["answer"], values))
    return problems


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
