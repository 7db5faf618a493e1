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
                               5+7=12                                7*8=56                                \\boxed{-5}
                               \\boxed{12}                           240+56=296
                                                                     \\boxed{296}

A world (`world_sets`) is one distillation pool and three evaluation sets (heldout, hard,
probe). Each set and skill reads its own range of generator seeds (`stream_seed`), and an
evaluation problem that equals a pool problem after `contamination.normalise_prompt`
(`3 + 5` = `5+3`) is replaced by the next one with as many terms, so no evaluation problem is
a training problem of the distillation. The models' pretraining data (`make_mixture`, see
`toy.pretrain`) is another matter: it covers every short chain, product and difference, so
evaluation problems do occur in it, the same for every method compared (README, "The built-in
example", gives the shares).

    problems = make_problems(seed=0, count=100, terms=(2, 8))          # additions
    sets = world_sets(0, 480, 96, {"add": 0.75, "mul": 0.25}, pool_terms=(2, 7), hard_terms=(6, 7))
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

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
    return make_skill_problems("add", seed, count, terms, prefix=prefix)


def make_skill_problems(
    skill: str, seed: int, count: int, terms: tuple[int, int] = (2, 7), prefix: str | None = None,
    exclude: frozenset[str] | set[str] = frozenset(), max_items: int | None = None,
) -> list[Problem]:
    """`count` problems of one skill (see the module docstring), deterministic by seed.

    reasoning-gym builds item i of a dataset with seed s from `Random(s + i)`; the problems are
    the first `count` items of the skill (mul keeps only two digits times one digit), in order.
    An item whose normalised prompt (`contamination.normalise_prompt`) is in `exclude` is
    replaced by the next unused item after those `count` with the same number of terms and a
    prompt not in `exclude`, so the set keeps its size and its mix of chain lengths.

    Args:
        skill: "add", "mul" or "sub".
        seed: reasoning-gym dataset seed.
        count: number of problems.
        terms: inclusive range of the number of terms (add only; mul and sub have two).
        prefix: problem ids are f"{prefix}-{seed}-{index}" (default: the skill).
        exclude: normalised prompts that must not occur (e.g. the training pool's).
        max_items: read at most items seed .. seed + max_items - 1 (a stream's share of the seeds);
            default: no limit, or STREAM_ITEMS with `exclude`.

    Raises:
        ValueError: an unknown skill, or `count` problems outside `exclude` need more than
            `max_items` items.
    """
    from paced_curate.contamination import normalise_prompt

    prefix = prefix or skill
    if skill == "add":
        settings = dict(min_terms=terms[0], max_terms=terms[1], min_digits=1, max_digits=1, operators=("+",))
        keep = lambda values: True  # noqa: E731
    elif skill == "mul":
        # 11..99 times 2..9 only: reasoning-gym draws each operand's digit count, we keep those pairs
        settings = dict(min_terms=2, max_terms=2, min_digits=1, max_digits=2, operators=("*",))
        keep = lambda values: sorted(values)[0] in range(2, 10) and sorted(values)[1] in range(11, 100)  # noqa: E731
    elif skill == "sub":
        settings = dict(min_terms=2, max_terms=2, min_digits=1, max_digits=1, operators=("-",))
        keep = lambda values: True  # noqa: E731
    else:
        raise ValueError(f"skill must be one of {SKILLS}, not {skill!r}")
    if exclude and max_items is None:
        max_items = STREAM_ITEMS  # a replacement that does not exist must end in an error, not a search without end
    stream = _Stream(seed, settings, lambda entry: keep(_operands(entry, skill)), max_items)
    chosen = stream.take(count)
    if exclude:
        spare = count
        for index, entry in enumerate(chosen):
            if normalise_prompt(entry["question"]) not in exclude:
                continue
            length = len(_operands(entry, skill))
            while True:
                candidate = stream.get(spare)
                spare += 1
                if candidate is None:
                    raise ValueError(
                        f"{skill} (seed {seed}): found no {length}-term problem outside the {len(exclude):,} excluded "
                        f"prompts within {max_items:,} generator items"
                    )
                if len(_operands(candidate, skill)) == length and normalise_prompt(candidate["question"]) not in exclude:
                    chosen[index] = candidate
                    break
    return [_problem(f"{prefix}-{seed}-{index:06d}", entry, skill) for index, entry in enumerate(chosen)]


class _Stream:
    """The kept items of one reasoning-gym dataset in order, generated in growing chunks."""

    def __init__(self, seed: int, settings: dict, keep, max_items: int | None) -> None:
        self.seed, self.settings, self.keep, self.max_items = seed, settings, keep, max_items
        self.kept: list[dict] = []
        self.read = 0

    def get(self, index: int) -> dict | None:
        """The kept item number `index` (0-based), or None when the stream's items run out."""
        while len(self.kept) <= index:
            if self.max_items is not None and self.read >= self.max_items:
                return None
            size = max(3 * (index + 1 - len(self.kept)), 64)
            stop = self.read + size if self.max_items is None else min(self.read + size, self.max_items)
            self.kept += [entry for entry in _generate(self.seed, stop, self.settings, start=self.read) if self.keep(entry)]
            self.read = stop
        return self.kept[index]

    def take(self, count: int) -> list[dict]:
        if count and self.get(count - 1) is None:
            raise ValueError(f"seed {self.seed}: fewer than {count:,} problems within {self.max_items:,} generator items")
        return list(self.kept[:count])


def make_mixture(seed: int, count: int, shares: dict[str, float], terms: tuple[int, int] = (2, 7), prefix: str = "mix") -> list[Problem]:
    """`count` problems mixing skills in the given shares, shuffled, deterministic by seed.

    Skill k's generator seed is `seed * 7 + k`: mixtures with nearby seeds share items, so this
    serves the models' pretraining data; a world's problem sets come from `world_sets`.

    Args:
        seed: seed of every skill's generator (offset per skill) and of the shuffle.
        count: number of problems.
        shares: skill -> share of the problems (normalised; the last skill takes the rounding).
        terms: inclusive range of the number of terms of the additions.
        prefix: problem ids are f"{prefix}{skill}-{seed}-{index}" before the shuffle.
    """
    problems = []
    for skill, n in split_counts(count, shares).items():
        if n > 0:
            problems += make_skill_problems(skill, seed * 7 + SKILLS.index(skill), n, terms, prefix=f"{prefix}{skill}")
    random.Random(seed).shuffle(problems)
    return problems


def split_counts(count: int, shares: dict[str, float]) -> dict[str, int]:
    """Problems per skill: `count` split in the given shares (rounded; the last skill takes the rest)."""
    total = sum(shares.values())
    names = list(shares)
    counts = [round(count * shares[name] / total) for name in names[:-1]]
    counts.append(count - sum(counts))
    return dict(zip(names, counts))


PARTS = ("pool", "heldout", "hard", "probe")
"""A world's problem sets: the distillation pool (training) and three evaluation sets."""
STREAM_BASE = 10**9
"""First generator seed of the worlds' streams: above every item the pretraining mixtures read
(`make_mixture(data_seed)` reads seeds data_seed * 7 + skill + index, below 10**6)."""
STREAM_ITEMS = 10**6
"""Generator items each (world, set, skill) stream owns: its seeds are stream_seed .. stream_seed + STREAM_ITEMS - 1."""


def stream_seed(world: int, part: str, skill: str) -> int:
    """The first reasoning-gym seed of one world's set and skill; streams never share a seed.

    Stream (world, part, skill) reads items `Random(seed + i)` for i < STREAM_ITEMS only, and the
    seeds of different streams are STREAM_ITEMS apart, so no two sets and no two worlds draw the
    same generator item.

    Raises:
        ValueError: a negative world, or an unknown part or skill.
    """
    if world < 0 or part not in PARTS or skill not in SKILLS:
        raise ValueError(f"stream_seed needs world >= 0, part in {PARTS}, skill in {SKILLS}; got {world}, {part!r}, {skill!r}")
    return STREAM_BASE + ((world * len(PARTS) + PARTS.index(part)) * len(SKILLS) + SKILLS.index(skill)) * STREAM_ITEMS


def world_sets(
    world: int, num_problems: int, num_eval: int, shares: dict[str, float], pool_terms: tuple[int, int], hard_terms: tuple[int, int],
) -> dict[str, list[Problem]]:
    """One world's problem sets, disjoint from the pool by construction (README, "The built-in example").

    pool: `num_problems` problems mixing the skills in `shares` (additions over `pool_terms`),
    shuffled; heldout: `num_eval` more from the same distribution; hard: `num_eval` additions
    over `hard_terms`; probe: `num_eval` differences. Each (set, skill) draws from its own
    generator stream (`stream_seed`), and an evaluation item whose normalised prompt
    (`contamination.normalise_prompt`: operand order, spacing, case) is a pool prompt is
    replaced by the stream's next item with as many terms that is not (`make_skill_problems`).
    So no evaluation problem is a pool problem, each set keeps its size, its skill counts and its
    count of each chain length; the heldout set's short chains, of which the pool already holds
    many, are drawn from those the pool lacks.

    Problem ids are f"{set}{skill}-{world}-{index}" ("pooladd-3-000017"; hard and probe: f"{set}-{world}-{index}").

    Returns:
        {"pool", "heldout", "hard", "probe"} -> problems.
    """
    from paced_curate.contamination import normalise_prompt

    def mixture(part: str, count: int, exclude: frozenset[str]) -> list[Problem]:
        problems = []
        for skill, n in split_counts(count, shares).items():
            drawn = make_skill_problems(skill, stream_seed(world, part, skill), n, pool_terms, exclude=exclude, max_items=STREAM_ITEMS)
            problems += [replace(p, problem_id=f"{part}{skill}-{world}-{i:06d}") for i, p in enumerate(drawn)]
        random.Random(stream_seed(world, part, SKILLS[0])).shuffle(problems)
        return problems

    def single(part: str, skill: str, terms: tuple[int, int], exclude: frozenset[str]) -> list[Problem]:
        drawn = make_skill_problems(skill, stream_seed(world, part, skill), num_eval, terms, exclude=exclude, max_items=STREAM_ITEMS)
        return [replace(p, problem_id=f"{part}-{world}-{i:06d}") for i, p in enumerate(drawn)]

    pool = mixture("pool", num_problems, frozenset())
    training = frozenset(normalise_prompt(p.prompt) for p in pool)
    return {
        "pool": pool,
        "heldout": mixture("heldout", num_eval, training),
        "hard": single("hard", "add", hard_terms, training),
        "probe": single("probe", "sub", (2, 2), training),
    }


def _generate(seed: int, size: int, settings: dict, start: int = 0) -> list[dict]:
    """Items start .. size - 1 of a reasoning-gym dataset (item i depends only on seed + i)."""
    import reasoning_gym

    dataset = reasoning_gym.create_dataset(
        "basic_arithmetic", size=size, seed=seed, allow_parentheses=False, allow_negation=False, whitespace="single", **settings
    )
    return [dataset[index] for index in range(start, size)]


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
