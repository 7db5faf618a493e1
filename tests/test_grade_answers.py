"""What counts as the answer (#12): reasoning traces, the last box, answer phrases, strict boxed
mode, and graders that never turn an answer into a different value. Every table runs through
the real graders (real math-verify for `math`), on whole completions as `paced grade` sees them."""

from __future__ import annotations

import pytest

from paced_curate.errors import ConfigError
from paced_curate.grade.answers import answer_phrase, answer_region, choice_letter, find_last_box, parse_number, parse_reasoning_tags
from paced_curate.grade.equivalence import same_answer
from paced_curate.grade.graders import BUILTIN, load_grader, make_grader, reduce_completion

MODES = {"default": {}, "boxed": {"answer_format": "boxed"}, "no tags": {"reasoning_tags": ()}}
SPECS = {(mode, name): load_grader(name, **settings) for mode, settings in MODES.items() for name in BUILTIN}
GRADERS = {key: make_grader(spec) for key, spec in SPECS.items()}


def outcome(grader, completion, gold, mode="default"):
    """Grade as the runner does (reduce in the parent, grade the reduced text) and directly: both must agree."""
    reduced = reduce_completion(SPECS[mode, grader], completion)
    direct = tuple(GRADERS[mode, grader](completion, gold))
    via_parent = ("no_answer", None, None) if reduced is None else tuple(GRADERS[mode, grader](reduced, gold))
    assert direct == via_parent, (direct, via_parent)
    return direct


# --- 3. reasoning traces: (completion, gold, verdict per grader math/numeric, why) -----------------
TRACES = [
    ("<think>maybe \\boxed{4}. No: 2x+1=13 gives x=6</think> The solution is x = 6.", "4", "incorrect", "the issue's example: a box inside the trace is thinking aloud"),
    ("<think>maybe \\boxed{4}. No: 2x+1=13 gives x=6</think> The solution is x = 6.", "6", "correct", "the text after the trace is the answer"),
    ("<think>try \\boxed{5}</think> So \\boxed{6}", "6", "correct", "a box after the trace"),
    ("<think>try \\boxed{6}</think> So \\boxed{5}", "6", "incorrect", "the right box only inside the trace"),
    ("<think>\\boxed{6}</think>", "6", "no_answer", "nothing after the trace"),
    ("<think>it is 6, \\boxed{6}", "6", "no_answer", "an unclosed trace (stopped mid-thought)"),
    ("Sure. <think>the sum is 6</think> \\boxed{6}", "6", "correct", "text before <think> is ignored"),
    ("\\boxed{6} <think>hmm, let me check", "6", "no_answer", "a box BEFORE an unclosed trace: the model had not finished"),
    ("<think></think>\\boxed{6}", "6", "correct", "an empty trace"),
    ("<think>a <think>b</think> c \\boxed{5}</think> \\boxed{6}", "6", "correct", "nested tags: after the last closing tag"),
    ("<think>a</think> \\boxed{5} <think>b</think> \\boxed{6}", "6", "correct", "two traces: the answer after the last one"),
    ("<think>a</think> \\boxed{6} <think>but wait", "6", "no_answer", "a second trace that never closes"),
    ("the sum is 5 </think> \\boxed{6}", "6", "correct", "only a closing tag (<think> was in the prompt)"),
    ("<THINK>\\boxed{5}</THINK> \\boxed{6}", "6", "correct", "upper-case tags match too"),
    ("<Think>\\boxed{6}</think>", "6", "no_answer", "mixed-case tags match too"),
    ("<|begin_of_thought|>\\boxed{5}<|end_of_thought|><|begin_of_solution|>\\boxed{6}<|end_of_solution|>", "6", "correct", "OpenThoughts tags are on by default"),
    ("<|begin_of_thought|>the answer is \\boxed{6}", "6", "no_answer", "an unclosed OpenThoughts trace"),
]


@pytest.mark.parametrize("completion,gold,verdict,why", TRACES, ids=[case[3] for case in TRACES])
@pytest.mark.parametrize("grader", ["math", "numeric"])
def test_only_the_text_after_the_reasoning_trace_is_graded(grader, completion, gold, verdict, why):
    assert outcome(grader, completion, gold)[0] == verdict, why


def test_traces_apply_to_exact_choice_and_plugins_too():
    assert outcome("exact", "<think>\\boxed{Lyon}</think> Answer: Paris", "Paris")[0] == "correct"
    assert outcome("exact", "<think>\\boxed{Paris}</think> Answer: Lyon", "Paris")[0] == "incorrect"
    assert outcome("exact", "<think>Paris", "Paris")[0] == "no_answer"
    assert outcome("choice", "<think>\\boxed{B}</think> The answer is (C).", "B")[0] == "incorrect"
    assert outcome("choice", "<think>It is B", "B")[0] == "no_answer"
    spec = load_grader(f"{__name__}:contains_gold")
    plugin = make_grader(spec)
    assert plugin("<think>6</think> I think 5", "6").verdict == "incorrect"  # the plugin never sees the trace
    assert plugin("<think>6 6 6", "6").verdict == "no_answer"
    assert reduce_completion(spec, "<think>x</think> keep all of this") == " keep all of this"


def contains_gold(completion, gold):
    """A plugin: correct when the gold appears in what it is shown."""
    return gold in completion


def test_reasoning_tags_can_be_turned_off_or_changed():
    completion = "<think>\\boxed{6}</think> then \\boxed{5}"
    assert outcome("math", "<think>it is \\boxed{6}", "6", mode="no tags")[0] == "correct"  # off: a plain completion
    assert outcome("math", completion, "5", mode="no tags")[0] == "correct"
    tags = parse_reasoning_tags(["<reasoning>,</reasoning>"])
    assert answer_region("<reasoning>\\boxed{1}</reasoning> 2", tags) == " 2"
    assert answer_region("<think>1</think> 2", tags) == "<think>1</think> 2"  # only the given pairs
    assert parse_reasoning_tags(["none"]) == ()
    assert parse_reasoning_tags("none") == () and parse_reasoning_tags("<a>,</a>") == (("<a>", "</a>"),)  # one string from Python
    assert parse_reasoning_tags(["<a>,</a>", "<b>,</b>"]) == (("<a>", "</a>"), ("<b>", "</b>"))


@pytest.mark.parametrize("value", ["<think>", "<think>,", ",</think>", "a,b,c", " , "])
def test_bad_reasoning_tags_are_one_line_config_errors(value):
    with pytest.raises(ConfigError, match="--reasoning-tags"):
        parse_reasoning_tags([value])
    with pytest.raises(ConfigError, match="--reasoning-tags"):
        parse_reasoning_tags(["none", "<a>,</a>"])


# --- 3. the last box: (completion, gold, verdict, extracted for math, why) ---------------------
LAST_BOX = [
    ("so \\boxed{14} hmm, so the count is \\boxed{15", "14", "no_answer", None, "the issue's example: the last box is cut off; never the earlier one"),
    ("so \\boxed{14} hmm, so the count is \\boxed{15", "15", "no_answer", None, "a cut box is unreadable even when it starts right"),
    ("\\boxed{\\frac{1}{2}} then \\boxed{\\frac{3", "1/2", "no_answer", None, "open braces inside a cut box"),
    ("the answer is \\boxed", "5", "no_answer", None, "cut right after \\boxed"),
    ("the answer is \\boxed 5", "5", "correct", "5", "\\boxed 5 without braces"),
    ("so it is \\boxed 42.", "42", "correct", "42", "\\boxed 42: the whole token, as meant"),
    ("\\fbox{7}", "7", "correct", "7", "\\fbox counts as a box"),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}", "correct", "\\frac{\\sqrt{3}}{2}", "nested braces inside a box"),
    ("\\boxed{2} or rather \\boxed{3}", "3", "correct", "3", "two boxes close together: the last (math-verify alone makes a set)"),
    ("\\boxed{2}\\boxed{3}", "2", "incorrect", "3", "two adjacent boxes: the last"),
    ("So $\\boxed{5}$.", "5", "correct", "5", "a box inside $...$"),
    ("$$\\boxed{\\{1,2\\}}$$", "\\{1,2\\}", "correct", "\\{1,2\\}", "escaped braces inside a box"),
    ("\\boxed{}", "3", "no_answer", None, "an empty box"),
]


@pytest.mark.parametrize("completion,gold,verdict,extracted,why", LAST_BOX, ids=[case[4] for case in LAST_BOX])
def test_the_last_box_is_the_answer(completion, gold, verdict, extracted, why):
    assert outcome("math", completion, gold)[:2] == (verdict, extracted), why


@pytest.mark.parametrize("grader,completion,gold", [("numeric", "\\boxed{14} ... \\boxed{15", "14"), ("exact", "\\boxed{a} ... \\boxed{b", "a"), ("choice", "\\boxed{A} ... \\boxed{(B", "A")])
def test_an_open_last_box_is_no_answer_for_every_grader(grader, completion, gold):
    assert outcome(grader, completion, gold)[0] == "no_answer"


# --- 3. strict boxed mode: (grader, completion, gold, default verdict, boxed verdict, why) --------
STRICT = [
    ("math", "so the total is 12 apples", "12", "correct", "no_answer", "no box: math-verify's own extraction, or nothing"),
    ("numeric", "We get 12, then 13.", "13", "correct", "no_answer", "no box: the last number, or nothing"),
    ("numeric", "The answer is 13.", "13", "correct", "no_answer", "an answer phrase is not a box"),
    ("exact", "Answer: Paris", "Paris", "correct", "no_answer", "a phrase for exact"),
    ("choice", "B", "B", "correct", "no_answer", "a one-line letter"),
    ("numeric", "\\boxed{13}", "13", "correct", "correct", "a box counts in both"),
    ("choice", "\\boxed{\\text{(B)}}", "B", "correct", "correct", "a boxed letter counts in both"),
]


@pytest.mark.parametrize("grader,completion,gold,default,boxed,why", STRICT, ids=[case[5] for case in STRICT])
def test_boxed_mode_has_no_fallback(grader, completion, gold, default, boxed, why):
    assert outcome(grader, completion, gold)[0] == default, why
    assert outcome(grader, completion, gold, mode="boxed")[0] == boxed, why


def test_answer_format_is_checked():
    with pytest.raises(ConfigError, match="--answer-format must be one of any, boxed"):
        load_grader("math", answer_format="strict")


# --- 4. numbers: (text, value or None, why) ------------------------------------------------
NUMBERS = [
    ("\u22127", -7.0, "U+2212 minus"), ("\u20127", -7.0, "figure dash"), ("\u20137", -7.0, "en dash"), ("\u20147", -7.0, "em dash"),
    ("\u20157", -7.0, "horizontal bar"), ("\ufe637", -7.0, "small hyphen-minus"), ("\uff0d7", -7.0, "full-width hyphen-minus"),
    ("\\$9{,}500", 9500.0, "the issue's example: \\$ and {,}"), ("9\\,500", 9500.0, "\\, thousands separator"), ("9\\!500", 9500.0, "\\! separator"),
    ("1\\,234\\,567", 1234567.0, "several \\, groups"), ("9,500", 9500.0, "a plain comma before three digits groups thousands"),
    ("1,234.5", 1234.5, "thousands and decimals"), ("9\u2009500", 9500.0, "thin space"), ("$9,500", 9500.0, "a dollar sign"),
    ("1,23", None, "a comma before two digits is not a thousands separator"), ("1, 2", None, "a list of two numbers"), ("1,2", None, "ambiguous (list or decimal comma)"),
    ("12,34,567", None, "Indian grouping is not read"),
    ("1.5\\times 10^{3}", 1500.0, "\\times 10^{k}"), ("1.5 \\cdot 10^3", 1500.0, "\\cdot 10^k"), ("10^{-2}", 0.01, "a power of ten"),
    ("1.5e3", 1500.0, "e notation"), ("2E-3", 0.002, "E notation"), ("2\\frac{1}{2}", 2.5, "a mixed number"), ("-2\\frac{1}{2}", -2.5, "a negative mixed number"),
    ("2 1/2", 2.5, "a plain mixed number"), ("\\dfrac{3}{4}", 0.75, "\\dfrac"), ("\\tfrac{3}{4}", 0.75, "\\tfrac"), ("\\frac34", 0.75, "\\frac34"),
    ("-\\frac{1}{4}", -0.25, "a negative fraction"), ("3/4", 0.75, "a slash"), ("\\frac{1}{0}", None, "division by zero"),
    ("50\\%", 50.0, "\\% (50\\% is 50)"), ("50%", 50.0, "%"), ("5 \\text{ meters}", 5.0, "\\text{} units"), ("5\\,\\text{cm}^2", 5.0, "units with a power"),
    ("5cm", 5.0, "a known unit glued on"), ("5 km", 5.0, "a unit after a space"), ("12 apples", 12.0, "a word after a space"), ("30^\\circ", 30.0, "degrees"),
    ("42.", 42.0, "a trailing period"), ("x = 5", 5.0, "x = 5"), ("$-3$", -3.0, "math delimiters"), ("\\text{7}", 7.0, "\\text{7}"), ("**8**", 8.0, "markdown bold"),
    ("7.5 million", None, "a multiplier word changes the value"), ("\\$2 \\text{ billion}", None, "a multiplier in \\text"),
    ("3 dozen", None, "dozen"), ("1/2 cup", 0.5, "a unit after a fraction"),
    ("3x", None, "3x is not 3"), ("2\\pi", None, "an expression"), ("\\sqrt{2}", None, "a root"), ("5 or 6", None, "two numbers"),
    ("5\\text{ or }6", None, "two numbers with text between"), ("1-3", None, "a range"), ("", None, "empty"), ("about 5", None, "a hedge"),
]


@pytest.mark.parametrize("text,value,why", NUMBERS, ids=[case[2] for case in NUMBERS])
def test_parse_number_reads_what_people_write_or_nothing(text, value, why):
    assert parse_number(text) == (None if value is None else pytest.approx(value)), why


# (completion, gold, verdict, why): the numeric grader end to end.
NUMERIC = [
    ("\\boxed{\u22127}", "7", "incorrect", "the issue's example: U+2212 minus is not dropped"),
    ("\\boxed{\u22127}", "-7", "correct", "U+2212 minus is a minus"),
    ("\\boxed{\\$9{,}500}", "9500", "correct", "the issue's example: not 500"),
    ("\\boxed{\\$9{,}500}", "500", "incorrect", "and never 500"),
    ("\\boxed{9\\,500}", "9,500", "correct", "a gold with a comma"),
    ("\\boxed{1, 2}", "2", "no_answer", "a list in the box: not its last number"),
    ("\\boxed{3x}", "3", "no_answer", "3x is not the number 3"),
    ("\\boxed{\\sqrt{2}+1}", "1", "incorrect", "an expression is read as its one value (2.414, #23), never as its last number"),
    ("The answer is 42 because 6 times 7.", "7", "no_answer", "an answer phrase that is not one number: not its last number"),
    ("The answer is 42 meters.", "42", "correct", "a phrase with a unit"),
    ("She has 3 boxes of 6.\n#### 18", "18", "correct", "GSM8K's #### marker"),
    ("She has 3 boxes of 6.\n#### 1,800", "18", "incorrect", "#### with a thousands separator"),
    ("She pays 3 times, so 12 dollars in all.", "12", "correct", "no box, no phrase: the last number"),
    ("The total is \u22125.", "-5", "correct", "the last number keeps a Unicode minus"),
    ("It costs 9,500 dollars.", "9500", "correct", "the last number keeps its thousands separator"),
    ("The city has 2.5 million people.", "2.5", "no_answer", "the last number with a multiplier word: not 2.5"),
    ("\\boxed{1.5e3}", "1500", "correct", "e notation"),
    ("\\boxed{0.333}", "1/3", "incorrect", "outside the tolerance"),
]


@pytest.mark.parametrize("completion,gold,verdict,why", NUMERIC, ids=[case[3] for case in NUMERIC])
def test_numeric_grader_never_reads_another_number(completion, gold, verdict, why):
    assert outcome("numeric", completion, gold)[0] == verdict, why


# --- 4. choice: (completion, gold, verdict, letter read, why) --------------------------------
CHOICE = [
    ("Answer: A or B", "A", "no_answer", None, "the issue's example: two letters"),
    ("The answer is A, C", "A", "no_answer", None, "a comma list"),
    ("\\boxed{B/D}", "B", "no_answer", None, "a slash"),
    ("The answer is A and C.", "C", "no_answer", None, "'and'"),
    ("\\boxed{(A)(C)}", "A", "no_answer", None, "two bracketed letters"),
    ("\\boxed{AC}", "A", "no_answer", None, "letters run together"),
    ("Answer: (A) or (B)", "A", "no_answer", None, "bracketed letters joined by 'or'"),
    ("\\boxed{A \\text{ or } B}", "A", "no_answer", None, "'or' in \\text"),
    ("\\boxed{E) 42 meters}", "E", "correct", "E", "option text after the letter"),
    ("\\boxed{C. A triangle}", "C", "correct", "C", "option text starting with a capital A"),
    ("\\boxed{\\text{Answer: G}}", "G", "correct", "G", "a label inside the box"),
    ("\\boxed{\\textbf{(D)}}", "D", "correct", "D", "bold LaTeX letter"),
    ("The correct answer is **B**", "B", "correct", "B", "markdown bold"),
    ("**Answer:** **B**", "B", "correct", "B", "markdown around the label"),
    ("(C)", "C", "correct", "C", "a bracketed letter alone"),
    ("Answer: D.", "D", "correct", "D", "a letter and a period"),
    ("Answer:\nD", "D", "correct", "D", "the letter on the next line"),
    ("The answer is (C) because it is the largest.", "C", "correct", "C", "a reason after a bracketed letter"),
    ("The answer is A because ...", "B", "incorrect", "A", "a reason after a letter"),
    ("The answer is a bit unclear", "B", "no_answer", None, "a lower-case word is not a choice"),
    ("\\boxed{b}", "B", "correct", "B", "a lone lower-case letter"),
    ("Option B", "B", "correct", "B", "one line: 'Option B'"),
    ("Comparing them all,\nthe correct option is C.", "C", "correct", "C", "'the correct option is'"),
    ("I think it's B", "B", "no_answer", None, "the pronoun I is not chosen (and B is a second letter)"),
    ("Answer: B, because it is larger", "B", "correct", "B", "a comma, then a reason"),
    ("Answer: B, because A is wrong", "B", "correct", "B", "a remark after a comma may name another letter (#23: 'D, since B double counts')"),
    ("\\boxed{Both A and C}", "A", "no_answer", None, "'Both A and C'"),
    ("None of the above", "A", "no_answer", None, "a word starting with a capital is not a letter"),
]


@pytest.mark.parametrize("completion,gold,verdict,letter,why", CHOICE, ids=[case[4] for case in CHOICE])
def test_choice_grader_reads_one_letter_or_none(completion, gold, verdict, letter, why):
    got = outcome("choice", completion, gold)
    assert got[0] == verdict, (why, got)
    if letter is not None:
        assert got[1] == letter


# --- 4. exact and answer phrases: (completion, gold, verdict, why) ----------------------------
EXACT = [
    ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}", "correct", "the issue's Minerva example"),
    ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "3/4", "incorrect", "exact compares spelling"),
    ("Final Answer: The final answer is 7. I hope it is correct.", "7", "correct", "Minerva without $...$"),
    ("Final Answer: The final answer is \\(x+1\\). I hope it is correct.", "x+1", "correct", "Minerva with \\(...\\)"),
    ("The answer is: Paris.", "Paris", "correct", "a final period"),
    ("The answer is Paris. It is the capital.", "Paris", "correct", "the phrase ends with its sentence"),
    ("The answer is 3.5 meters", "3.5 meters", "correct", "a decimal point is not a sentence end"),
    ("**Answer:** Paris", "Paris", "correct", "markdown label"),
    ("The final answer is $\\boxed{\\text{Paris}}$", "paris", "correct", "a box wins; case and \\text are normalised"),
    ("line one\nline two", "x", "no_answer", "several lines, no box, no phrase"),
]


@pytest.mark.parametrize("completion,gold,verdict,why", EXACT, ids=[case[3] for case in EXACT])
def test_exact_grader_and_answer_phrases(completion, gold, verdict, why):
    assert outcome("exact", completion, gold)[0] == verdict, why


# --- 4. math (real math-verify) on every kind above: (completion, gold, verdict, why) -------------
MATH = [
    ("\\boxed{\u22127}", "7", "incorrect", "U+2212 minus"),
    ("\\boxed{\u20137}", "-7", "correct", "an en dash is a minus (math-verify alone reads text)"),
    ("\\boxed{\\$9{,}500}", "9500", "correct", "\\$ and {,}"),
    ("\\boxed{9\\,500}", "9500", "correct", "\\, separator (math-verify alone reads 509)"),
    ("\\boxed{9\\,500}", "509", "incorrect", "and never 509"),
    ("\\boxed{1.5e3}", "1500", "correct", "e notation (math-verify alone reads 1.5*e*3)"),
    ("\\boxed{1.5\\times 10^{3}}", "1500", "correct", "\\times 10^k"),
    ("\\boxed{2\\frac{1}{2}}", "\\frac{5}{2}", "correct", "a mixed number"),
    ("\\boxed{\\tfrac{1}{2}}", "0.5", "correct", "\\tfrac"),
    ("\\boxed{5 \\text{ meters}}", "5", "correct", "a unit"),
    ("\\boxed{42.}", "42", "correct", "a trailing period"),
    ("\\boxed{1, 2}", "12", "incorrect", "a list is not 12"),
    ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "0.75", "correct", "Minerva format"),
    ("\\boxed{B}", "B", "correct", "a letter"),
    ("Hence the answer is x = 6.", "6", "correct", "an answer phrase with x ="),
    ("Hence the answer is 6. Check: 2*3 = 7", "6", "correct", "the phrase, not math-verify's pick from the whole text"),
]


@pytest.mark.parametrize("completion,gold,verdict,why", MATH, ids=[case[3] for case in MATH])
def test_math_grader_on_every_kind(completion, gold, verdict, why):
    assert outcome("math", completion, gold)[0] == verdict, why


def test_helpers_directly():
    assert find_last_box("no box") == (False, None)
    assert find_last_box("\\boxed{1} \\boxed{2") == (True, None)
    assert answer_phrase("We know the answer is $5$. Done.") == "5"
    assert answer_phrase("no phrase here") is None
    assert choice_letter("(B)") == "B" and choice_letter("B or C") is None
    # An answer phrase is reduced like a box: one grading task for every sample that ends the same.
    minerva = "Lots of work.\nFinal Answer: The final answer is $\\frac{3}{4}$. I hope it is correct."
    assert reduce_completion(load_grader("math"), minerva) == "\\boxed{\\frac{3}{4}}"
    assert reduce_completion(load_grader("math"), "no phrase, so 12") == "no phrase, so 12"


# --- 7. the graders' own equivalence, used by maj@K -------------------------------------------
SAME = [
    ("math", "\\frac{1}{2}", "0.5", True), ("math", "1/2", "\\frac{1}{2}", True), ("math", "\\frac{1}{2}", "0.51", False),
    ("math", "2\\sqrt{2}", "\\sqrt{8}", True), ("math", "x=3", "3", True),
    ("numeric", "1,000", "1000", True), ("numeric", "\\frac{1}{2}", "0.5", True), ("numeric", "0.5", "0.6", False),
    ("choice", "(B)", "B", True), ("choice", "B", "C", False),
    ("exact", "Paris", "\\text{paris}", True), ("exact", "1/2", "0.5", False),
]


@pytest.mark.parametrize("grader,first,second,same", SAME, ids=[f"{c[0]}: {c[1]} vs {c[2]}" for c in SAME])
def test_same_answer_is_the_graders_own_equivalence(grader, first, second, same):
    assert same_answer(grader)(first, second) is same
