"""Normalised prompts, the overlap of an evaluation set with training data, and `paced distill --eval-overlap` (#21)."""

from __future__ import annotations

import pytest

from paced_curate.contamination import (
    Overlap,
    check_eval_overlap,
    find_overlap,
    normalise_answer,
    normalise_prompt,
    prompt_key,
)
from paced_curate.errors import InputError
from tests.conftest import assert_user_error, write_jsonl
from tests.test_distill_data import make_export, models, one_torch_thread  # noqa: F401 (fixtures)

# (one way, another way, same problem?, why)
PROMPTS = [
    ("Calculate 3 + 5.", "Calculate 5+3", True, "operand order of a sum, spacing, trailing period"),
    ("Calculate 37 * 8.", "calculate 8*37", True, "operand order of a product, case"),
    ("What is 2 + 3 + 4?", "what is 4+2+3", True, "a three-term chain, trailing question mark"),
    ("Compute $3 \\times 5$.", "Compute 5*3.", True, "LaTeX \\times and math delimiters"),
    ("Compute \\(3\\cdot 5\\)", "compute 5 * 3", True, "LaTeX \\cdot and \\( \\)"),
    ("Find 2 \u00d7 7", "Find 7*2", True, "the Unicode multiplication sign"),
    ("Find 2 \u22c5 7", "Find 7 \u2217 2", True, "the dot and asterisk operators"),
    ("\uff23\uff41\uff4c\uff43\uff55\uff4c\uff41\uff54\uff45 \uff15\uff0b\uff13", "Calculate 3 + 5", True, "NFKC: full-width letters, digits and plus"),
    ("Calculate\u00a03\u2009+\u20095", "Calculate 3+5", True, "non-breaking and thin spaces"),
    ("Solve  x\n+\ty", "solve y+x", True, "newlines and tabs; single letters are operands"),
    ("\\[ 1 \\, + \\; 2 \\]", "2+1", True, "LaTeX spacing commands and display delimiters"),
    ("$$1\\quad+\\qquad2$$", "2 + 1", True, "\\quad, \\qquad and $$"),
    ("\\left( 1+2 \\right)", "(2+1)", True, "\\left and \\right drop, the brackets stay"),
    ("8 \u2212 3", "8-3", True, "the Unicode minus sign"),
    ("12 \u00f7 4", "12/4", True, "the division sign"),
    ("x = 3 + 5", "x=5+3", True, "a chain after ="),
    ("3 + 5 - 2", "5 + 3 - 2", True, "a sum before a minus is its left operand"),
    ("2*3+5", "3*2+5", True, "a product inside a sum"),
    ("3.5+2", "2+3.5", True, "decimals are one operand"),
    ("\\frac{1+2}{3}", "\\frac{2+1}{3}", True, "a chain inside braces"),
    ("Calculate 4 + 10 + 4 + 0.", "Calculate 0 + 4 + 4 + 10.", True, "the built-in world's chains"),
    ("2 - 3 + 5", "2 - 5 + 3", False, "a sum after a minus is not reordered: (2-3)+5 != (2-5)+3"),
    ("6 / 2 * 3", "6 / 3 * 2", False, "a product after a division"),
    ("2^3*4", "2^4*3", False, "a product after a power"),
    ("3*4!", "4*3!", False, "a factorial binds to its operand"),
    ("Calculate 5!", "Calculate 5", False, "a trailing ! is kept (it may be a factorial)"),
    ("2+3*4", "3+2*4", False, "a sum next to a product is not flat"),
    ("(5+3)*2", "2*(3+5)", False, "bracketed operands are not sorted"),
    ("12+3", "1+23", False, "numbers stay whole"),
    ("1,000+1", "1000+1", False, "thousands separators are not removed"),
    ("Calculate 3 - 5.", "Calculate 5 - 3.", False, "differences keep their order"),
    ("ab+c", "c+ab", False, "words of several letters are not operands"),
    ("Calculate 3 + 5.", "Calculate 3 + 6.", False, "different problems"),
    ("What is 2+2?", "What is 2+2 apples?", False, "extra words"),
]


@pytest.mark.parametrize("first, second, same, why", PROMPTS, ids=[case[-1] for case in PROMPTS])
def test_normalised_prompts(first, second, same, why):
    assert (normalise_prompt(first) == normalise_prompt(second)) is same, (why, normalise_prompt(first), normalise_prompt(second))
    assert (prompt_key(first) == prompt_key(second)) is same, why


def test_normalisation_is_idempotent_and_the_key_is_16_hex_digits():
    for first, second, _, _ in PROMPTS:
        for text in (first, second):
            assert normalise_prompt(normalise_prompt(text)) == normalise_prompt(text), text
    assert normalise_prompt("Calculate 5 + 3.") == "calculate 3+5"
    key = prompt_key("Calculate 5 + 3.")
    assert len(key) == 16 and int(key, 16) >= 0


# (one, another, same answer?, why)
ANSWERS = [
    ("1/2", " 1 / 2 ", True, "spaces"),
    ("$5$", "5", True, "math delimiters"),
    ("Five", "five", True, "case"),
    ("5.", "5", True, "a trailing period"),
    ("\u22123", "-3", True, "the Unicode minus"),
    ("\\frac{1}{2}", "0.5", False, "no mathematical equivalence is tried"),
    ("12", "21", False, "different numbers"),
]


@pytest.mark.parametrize("first, second, same, why", ANSWERS, ids=[case[-1] for case in ANSWERS])
def test_normalised_answers(first, second, same, why):
    assert (normalise_answer(first) == normalise_answer(second)) is same, why


TRAIN = [
    ("t1", "Calculate 3 + 5.", "8"),
    ("t1", "Calculate 3 + 5.", "8"),  # a second reference of the same problem counts once
    ("t2", "Please solve the following. Calculate 7 + 2. Put the answer in a box.", "9"),
    ("t3", "Calculate 2 + 3 * 1.", "5"),
    ("t4", "Calculate 0 + 2 + 3.", "5"),
    ("t5", "Calculate 12 * 4.", "48"),
]
# (eval row, training id it matches or None, how, why)
EVALS = [
    (("e1", "calculate 5+3", "8"), "t1", "prompt", "operand order and case: the same prompt"),
    (("e2", "Calculate 2 + 7", "9"), "t2", "answer", "the training prompt wraps it in an instruction, same gold answer"),
    (("e3", "Calculate 2 + 7", "10"), None, None, "contained, but another gold answer"),
    (("e4", "2 + 3", "5"), None, None, "'2+3' inside '2+3*1' and '0+2+3' is not a whole part"),
    (("e5", "Calculate 4 * 12", "48"), "t5", "prompt", "a product in the other order"),
    (("e6", "Calculate 6 + 6", "12"), None, None, "a new problem"),
]


def test_find_overlap_by_prompt_and_by_gold_answer_and_prompt():
    overlap = find_overlap([case[0] for case in EVALS], TRAIN)
    assert overlap.num_eval == 6 and overlap.num_train == 5
    expected_prompt = sorted((case[0][0], case[1]) for case in EVALS if case[2] == "prompt")
    expected_answer = sorted((case[0][0], case[1]) for case in EVALS if case[2] == "answer")
    assert list(overlap.by_prompt) == expected_prompt
    assert list(overlap.by_answer) == expected_answer
    assert overlap.eval_ids == ["e1", "e2", "e5"]
    assert find_overlap([], TRAIN) == Overlap(num_eval=0, num_train=5, by_prompt=(), by_answer=())


def test_the_overlap_line_and_the_three_modes():
    overlap = find_overlap([case[0] for case in EVALS], TRAIN)
    line = overlap.line("heldout.jsonl", "data/")
    assert line == (
        "eval overlap: 3 of the 6 problems in heldout.jsonl are also training problems in data/ (2 by normalised prompt, "
        "1 more by gold answer + prompt): 'e1' (= training 't1'), 'e2' (= training 't2'), 'e5' (= training 't5')"
    )
    assert check_eval_overlap(overlap, "warn", "heldout.jsonl", "data/") == "warning: " + line
    assert check_eval_overlap(overlap, "allow", "heldout.jsonl", "data/") == line
    with pytest.raises(InputError, match="^eval overlap: 3 of the 6 .* evaluation problems must not be training problems"):
        check_eval_overlap(overlap, "error", "heldout.jsonl", "data/")
    clean = find_overlap([("e6", "Calculate 6 + 6", "12")], TRAIN)
    expected = "eval overlap: none of the 1 problems in h.jsonl is among the 5 training problems of d/ (normalised prompt; gold answer + prompt)"
    assert all(check_eval_overlap(clean, mode, "h.jsonl", "d/") == expected for mode in ("error", "warn", "allow"))
    with pytest.raises(ValueError, match="unknown overlap mode"):
        check_eval_overlap(clean, "ignore", "h.jsonl", "d/")


def test_many_overlaps_name_three_and_count_the_rest():
    train = [(f"t{i}", f"Calculate {i} + 1.", str(i + 1)) for i in range(10)]
    evals = [(f"e{i}", f"Calculate 1 + {i}.", str(i + 1)) for i in range(10)]
    line = find_overlap(evals, train).line("e", "t")
    assert line.startswith("eval overlap: 10 of the 10 problems") and line.endswith("'e2' (= training 't2') and 7 more")


# --- paced distill --eval: the check runs before training -------------------------------------

def _distill(cli, tmp_path, models, eval_file, *flags):
    data = make_export(tmp_path, n=4)  # prompts 'What is i + i?', answers 2i
    return cli(
        "distill", data, "--student", models["student"], "--teacher", models["teacher"], "-o", tmp_path / "run",
        "--max-steps", "1", "--batch-size", "4", "--template", "{prompt}=", "--chat-template", "off",
        "--eval", eval_file, "--eval-every", "0", "--eval-samples", "1", "--eval-max-tokens", "2", "--eval-workers", "1", *flags,
    )


def test_distill_eval_overlap_error_refuses_before_writing_anything(tmp_path, models, cli):
    eval_file = write_jsonl(tmp_path / "heldout.jsonl", [
        {"id": "h1", "question": "what is 2+2", "answer": "4"},  # = q02 'What is 2 + 2?'
        {"id": "h2", "question": "What is 9 + 9?", "answer": "18"},
    ])
    result = _distill(cli, tmp_path, models, eval_file, "--eval-overlap", "error")
    assert_user_error(result, f"eval overlap: 1 of the 2 problems in {eval_file} are also training problems in {tmp_path / 'data'} "
                              "(1 by normalised prompt, 0 more by gold answer + prompt): 'h1' (= training 'q02')")
    assert not (tmp_path / "run").exists()


def test_distill_eval_overlap_warns_by_default_and_trains(tmp_path, models, cli):
    eval_file = write_jsonl(tmp_path / "heldout.jsonl", [{"id": "h1", "question": "What is 1 + 1?", "answer": "2"}])
    result = _distill(cli, tmp_path, models, eval_file)
    assert result.exit_code == 0, result.output
    assert "warning: eval overlap: 1 of the 1 problems" in result.stderr and "'h1' (= training 'q01')" in result.stderr
    clean = write_jsonl(tmp_path / "clean.jsonl", [{"id": "h1", "question": "What is 9 + 9?", "answer": "18"}])
    result = _distill(cli, tmp_path, models, clean, "--overwrite", "--eval-overlap", "error")
    assert result.exit_code == 0, result.output
    assert f"eval overlap: none of the 1 problems in {clean} is among the 4 training problems" in result.stderr


def test_distill_refuses_an_unknown_overlap_mode(tmp_path, models, cli):
    eval_file = write_jsonl(tmp_path / "heldout.jsonl", [{"id": "h1", "question": "What is 9 + 9?", "answer": "18"}])
    assert_user_error(_distill(cli, tmp_path, models, eval_file, "--eval-overlap", "ignore"), "--eval-overlap must be one of error, warn, allow, not 'ignore'")


# --- paced export --eval: the same check against the exported problems --------------------------

def test_export_eval_counts_exported_problems_only_and_error_writes_nothing(tmp_path, cli):
    from tests.test_export import make_inputs

    problems, weights = make_inputs(tmp_path)  # 'What is i + i?', q00 has weight 0 (not exported)
    eval_file = write_jsonl(tmp_path / "heldout.jsonl", [
        {"id": "h0", "question": "What is 0 + 0?", "answer": "0"},  # only in the problem set: weight 0, dropped
        {"id": "h3", "question": "what is 3+3", "answer": "6"},
        {"id": "h9", "question": "What is 12 + 12?", "answer": "24"},
    ])
    result = cli("export", problems, weights, "-o", tmp_path / "data", "--eval", eval_file)
    assert result.exit_code == 0, result.output
    assert (f"warning: eval overlap: 1 of the 3 problems in {eval_file} are also training problems in the export of {problems} "
            "(1 by normalised prompt, 0 more by gold answer + prompt): 'h3' (= training 'q03')") in result.stderr
    refused = cli("export", problems, weights, "-o", tmp_path / "other", "--eval", eval_file, "--eval-overlap", "error")
    assert_user_error(refused, "eval overlap: 1 of the 3 problems")
    assert not (tmp_path / "other").exists()
    assert_user_error(cli("export", problems, weights, "-o", tmp_path / "x", "--eval-overlap", "never"),
                      "--eval-overlap must be one of error, warn, allow (got 'never')")
