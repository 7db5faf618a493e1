"""The built-in world: reasoning-gym problems of three skills, their worked solutions, and the parts they play."""

from __future__ import annotations

import re

import pytest

from paced_curate.toy.world import SKILLS, make_mixture, make_problems, make_skill_problems, worked_solution
from paced_curate.toy.zoo import FAST_STUDENT, FAST_TEACHER, STUDENT, TEACHER


def _evaluate(prompt: str) -> int:
    expression = re.fullmatch(r"Calculate (.+)\.", prompt).group(1)
    assert re.fullmatch(r"[\d +*-]+", expression), prompt
    return eval(expression)  # digits and + - * only, checked above


@pytest.mark.parametrize("skill", SKILLS)
def test_every_worked_solution_checks_out_line_by_line_and_ends_in_the_answer(skill):
    for problem in make_skill_problems(skill, seed=3, count=60):
        assert int(problem.answer) == _evaluate(problem.prompt)
        lines = problem.solution.splitlines()
        assert lines[-1] == f"\\boxed{{{problem.answer}}}"
        for line in lines[:-1]:
            left, right = line.split("=")
            assert eval(left) == int(right), (problem.prompt, line)


# (skill, terms, solution, why)
SOLUTIONS = [
    ("add", [4, 1, 7], "4+1=5\n5+7=12\n\\boxed{12}", "running sums left to right"),
    ("mul", [37, 8], "30*8=240\n7*8=56\n240+56=296\n\\boxed{296}", "tens and units partial products, then their sum"),
    ("mul", [8, 37], "8*30=240\n8*7=56\n240+56=296\n\\boxed{296}", "the written order is kept when the two-digit operand is second"),
    ("mul", [40, 3], "40*3=120\n0*3=0\n120+0=120\n\\boxed{120}", "a zero units digit still gets its line"),
    ("sub", [9, 7], "9-7=2\n\\boxed{2}", "one line"),
    ("sub", [3, 10], "3-10=-7\n\\boxed{-7}", "negative differences"),
]


@pytest.mark.parametrize("skill, terms, solution, why", SOLUTIONS, ids=[case[-1] for case in SOLUTIONS])
def test_worked_solutions(skill, terms, solution, why):
    assert worked_solution(terms, skill) == solution, why


def test_products_are_two_digits_times_one_digit_and_differences_two_operands():
    for problem in make_skill_problems("mul", seed=5, count=100):
        small, big = sorted(problem.terms)
        assert 2 <= small <= 9 and 11 <= big <= 99
    assert all(len(p.terms) == 2 and max(p.terms) <= 10 for p in make_skill_problems("sub", seed=5, count=50))
    with pytest.raises(ValueError, match="skill must be one of"):
        make_skill_problems("div", seed=0, count=1)


def test_problems_are_deterministic_by_seed_and_differ_across_seeds():
    first = [p.prompt for p in make_mixture(7, 40, {"add": 0.75, "mul": 0.25})]
    assert first == [p.prompt for p in make_mixture(7, 40, {"add": 0.75, "mul": 0.25})]
    assert first != [p.prompt for p in make_mixture(8, 40, {"add": 0.75, "mul": 0.25})]
    assert [p.prompt for p in make_problems(1, 10, (2, 4))] == [p.prompt for p in make_problems(1, 10, (2, 4))]


def test_mixture_shares_and_rows():
    pool = make_mixture(1, 200, {"add": 0.75, "mul": 0.25}, terms=(2, 7), prefix="pool")
    skills = [p.skill for p in pool]
    assert skills.count("add") == 150 and skills.count("mul") == 50 and "sub" not in skills
    assert len({p.problem_id for p in pool}) == 200
    rows = [p.row() for p in pool]
    assert {r["difficulty"] for r in rows if r["skill"] == "mul"} == {"beyond"}
    assert {r["num_terms"] for r in rows if r["skill"] == "add"} == set(range(2, 8))


def test_the_student_never_sees_a_product_and_only_the_student_learns_the_probe():
    for teacher, student in ((TEACHER, STUDENT), (FAST_TEACHER, FAST_STUDENT)):
        assert "mul" in dict(teacher.skills) and "mul" not in dict(student.skills)
        assert "sub" not in dict(teacher.skills) and "sub" in dict(student.skills)
    from paced_curate.demo import DemoConfig

    for config in (DemoConfig(), DemoConfig.small("x")):
        assert 0 < config.beyond_share < 1
