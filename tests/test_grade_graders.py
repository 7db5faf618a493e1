"""The graders on real math-verify: equivalent forms, wrong and missing answers, the last box,
the string graders, and plugin loading errors."""

from __future__ import annotations

import pytest

from paced_curate.errors import ConfigError
from paced_curate.grade.graders import GraderSpec, last_boxed, load_grader, make_grader, reduce_completion

MATH = make_grader(GraderSpec("math"))

# (gold, completion, why): each must be graded correct.
EQUIVALENT = [
    ("1/2", "so the answer is \\boxed{1/2}", "a slash fraction"),
    ("1/2", "\\boxed{0.5}", "a decimal equals the fraction"),
    ("\\frac{1}{2}", "\\boxed{\\frac12}", "bare LaTeX gold (wrapped in $...$) and the short \\frac12"),
    ("\\frac{1}{2}", "\\boxed{\\dfrac{1}{2}}", "\\dfrac is \\frac"),
    ("0.5", "\\boxed{\\frac{1}{2}}", "the fraction equals a decimal gold"),
    ("3", "\\boxed{3.0}", "3.0 is 3"),
    ("3", "\\boxed{x=3}", "an assignment x=3 answers 3"),
    ("3", "The final answer is 3", "no box: math-verify's own extraction of a plain number"),
    ("(1,2]", "\\boxed{(1, 2]}", "a half-open interval"),
    ("(0,\\infty)", "\\boxed{(0, \\infty)}", "an unbounded interval"),
    ("\\{1,2\\}", "\\boxed{\\{2,1\\}}", "a set in another order"),
    ("x^2+1", "\\boxed{1+x^2}", "a polynomial in another order"),
    ("\\sqrt{2}", "\\boxed{2^{1/2}}", "a root as a power"),
    ("3", "first \\boxed{2}, no wait: \\boxed{3}", "the last box is the answer (math-verify alone merges both into a set)"),
    ("\\frac{1}{2}", "\\fbox{\\frac{1}{2}}", "\\fbox counts as a box"),
]


@pytest.mark.parametrize("gold,completion,why", EQUIVALENT, ids=[case[2] for case in EQUIVALENT])
def test_equivalent_forms_are_correct(gold, completion, why):
    outcome = MATH(reduce_completion(GraderSpec("math"), completion), gold)
    assert outcome.verdict == "correct", (why, outcome)


WRONG = [
    ("3", "\\boxed{4}", "incorrect", "4", "a different number"),
    ("1/2", "\\boxed{0.51}", "incorrect", "0.51", "close is not equal"),
    ("(1,2]", "\\boxed{[1,2]}", "incorrect", "[1,2]", "a closed interval is not half-open"),
    ("3", "first \\boxed{3}, no wait: \\boxed{2}", "incorrect", "2", "an abandoned right answer does not count"),
    ("3", "I give up.", "no_answer", None, "nothing to extract"),
    ("3", "\\boxed{}", "no_answer", None, "an empty box"),
]


@pytest.mark.parametrize("gold,completion,verdict,extracted,why", WRONG, ids=[case[4] for case in WRONG])
def test_wrong_and_missing_answers(gold, completion, verdict, extracted, why):
    outcome = MATH(reduce_completion(GraderSpec("math"), completion), gold)
    assert (outcome.verdict, outcome.extracted) == (verdict, extracted), why


def test_extracted_answer_is_math_verify_text_not_a_sympy_string():
    outcome = MATH("\\boxed{2^{1/2}}", "\\sqrt{2}")
    assert outcome.extracted == "2^{1/2}"  # str(sympy) would be 'sqrt(2)'


def test_an_unparsable_gold_is_an_error_not_a_wall_of_wrong_answers():
    outcome = MATH("\\boxed{3}", "$$")
    assert outcome.verdict == "error" and "cannot be parsed by math-verify" in outcome.error


def test_last_boxed_matches_braces_and_never_falls_back_from_an_open_box():
    assert last_boxed("a \\boxed{\\frac{1}{2}} b \\boxed{x^{2}}") == "x^{2}"
    assert last_boxed("\\boxed{7} then cut off \\boxed{\\frac{1") is None  # the cut box was the answer (#12)
    assert reduce_completion(GraderSpec("math"), "\\boxed{7} then cut off \\boxed{\\frac{1") is None
    assert last_boxed("no box") is None
    assert reduce_completion(GraderSpec("math"), "long reasoning ... \\boxed{7}") == "\\boxed{7}"
    assert reduce_completion(GraderSpec("pkg.mod:fn"), "long reasoning ... \\boxed{7}") == "long reasoning ... \\boxed{7}"


STRING_GRADERS = [
    ("exact", "Paris", "The capital is \\boxed{\\text{paris}}", "correct", "case and \\text{} are normalised"),
    ("exact", "Paris", "The answer is: Paris.", "correct", "'answer is' line with a final period"),
    ("exact", "Paris", "\\boxed{Lyon}", "incorrect", "another string"),
    ("exact", "Paris", "line one\nline two", "no_answer", "several lines, no box, no 'answer'"),
    ("numeric", "1234.5", "\\boxed{1,234.5}", "correct", "thousands separators"),
    ("numeric", "0.75", "\\boxed{\\frac{3}{4}}", "correct", "a LaTeX fraction"),
    ("numeric", "3", "so 1 + 2 gives 3 apples", "correct", "no box: the last number in the text"),
    ("numeric", "3", "\\boxed{3.01}", "incorrect", "outside the default tolerance 1e-6"),
    ("numeric", "3", "no numbers here", "no_answer", "nothing numeric"),
    ("choice", "B", "The answer is (B).", "correct", "parenthesised letter"),
    ("choice", "(c)", "\\boxed{\\text{C}}", "correct", "gold and answer normalised to one letter"),
    ("choice", "B", "The answer is A because ...", "incorrect", "a capital letter heads the answer"),
    ("choice", "B", "The answer is a bit unclear", "no_answer", "a lower-case word is not a choice"),
]


@pytest.mark.parametrize("name,gold,completion,verdict,why", STRING_GRADERS, ids=[f"{c[0]}: {c[4]}" for c in STRING_GRADERS])
def test_string_graders(name, gold, completion, verdict, why):
    spec = load_grader(name)
    assert make_grader(spec)(reduce_completion(spec, completion), gold).verdict == verdict, why


def test_numeric_tolerance_and_non_numeric_gold():
    loose = make_grader(load_grader("numeric", tolerance=0.05))
    assert loose("\\boxed{3.01}", "3").verdict == "correct"
    assert loose("\\boxed{3}", "three").verdict == "correct"  # a number word is a number (#23)
    outcome = loose("\\boxed{3}", "Paris")
    assert outcome.verdict == "error" and outcome.error == "gold answer 'Paris' is not a number; use another --grader"


def boolean_grader(completion, gold):
    """A plugin that returns a bool."""
    return completion.strip() == gold


def tuple_grader(completion, gold):
    """A plugin that returns (verdict, extracted)."""
    return ("correct" if gold in completion else "incorrect", completion[-3:])


def bad_return_grader(completion, gold):
    return "yes"


def one_argument(completion):
    return True


def test_plugins_return_bools_or_tuples_and_bad_returns_are_errors():
    assert make_grader(load_grader(f"{__name__}:boolean_grader"))(" 7 ", "7") == ("correct", None, None)
    assert make_grader(load_grader(f"{__name__}:tuple_grader"))("it is 42", "42") == ("correct", " 42", None)
    outcome = make_grader(load_grader(f"{__name__}:bad_return_grader"))("x", "y")
    assert outcome.verdict == "error" and "returned 'yes'" in outcome.error


BAD_GRADERS = [
    ("mathh", "unknown grader 'mathh': choose math, exact, numeric, choice, or module:function for your own"),
    ("no_such_module_xyz:grade", "grader 'no_such_module_xyz:grade': module 'no_such_module_xyz' does not import: ModuleNotFoundError"),
    (f"{__name__}:missing", f"grader '{__name__}:missing': module '{__name__}' has no function 'missing'"),
    (f"{__name__}:one_argument", f"grader '{__name__}:one_argument': must accept (completion, gold) as two positional arguments; its signature is one_argument(completion)"),
]


@pytest.mark.parametrize("name,message", BAD_GRADERS, ids=["unknown", "no module", "no function", "signature"])
def test_bad_grader_names_are_one_line_config_errors(name, message):
    with pytest.raises(ConfigError) as caught:
        load_grader(name)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
