"""`paced grade --judge` (#23 item 5): a verifier model's second opinion where the rules say
incorrect or no_answer. Its replies are parsed robustly; it changes only what it calls correct;
requests are cached and bounded; a failing server keeps the rule verdicts and is counted. End to
end against a real vLLM server serving a tiny yes/no verifier trained here (toy/verifier.py)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from paced_curate.grade import GradeConfig, run_grade
from paced_curate.grade.judge import DEFAULT_PROMPT, JudgeItem, parse_judge_reply, render
from paced_curate.io import read_table
from paced_curate.schema import GRADES
from tests.conftest import assert_user_error, free_port, serve_vllm
from tests.test_grade_runner import rollout, write_rollouts

# (reply, reading): the reply formats verifiers write.
REPLIES = [
    ("Correct", "correct"), ("Incorrect", "incorrect"), ("[Correct]", "correct"), ("[Incorrect]", "incorrect"),  # xVerify
    ("A", "correct"), ("B", "incorrect"), ("C", "invalid"), ("\\boxed{A}", "correct"), ("\\boxed{B}", "incorrect"),  # CompassVerifier
    ("Final Judgment: A", "correct"), ("[[B]]", "incorrect"),
    ("True", "correct"), ("False", "incorrect"),  # TinyV
    ("yes", "correct"), ("no", "incorrect"), ("Yes.", "correct"), ("No, they differ.", "incorrect"), ("**Correct**", "correct"),
    ("Equivalent", "correct"), ("Not equivalent", "incorrect"), ("not correct", "incorrect"),
    ("<think>The student wrote 12.0; 12.0 equals 12.</think>\nCorrect", "correct"),
    ("<think>Is it correct? The values differ.</think>Incorrect", "incorrect"),
    ("Judgement: Incorrect", "incorrect"), ("Verdict: correct", "correct"), ("The answer is correct.", "correct"),
    ("The answer is incorrect because 13 is not 12.", "incorrect"),
    ("The student's answer matches the reference. Correct", "correct"),
    ("", "unreadable"), ("I cannot tell.", "unreadable"), ("Correct or incorrect, hard to say", "unreadable"),
    ("<think>still thinking", "unreadable"),
]


@pytest.mark.parametrize("reply,reading", REPLIES, ids=[repr(r[0])[:40] for r in REPLIES])
def test_judge_replies_are_read_robustly(reply, reading):
    assert parse_judge_reply(reply) == reading


def test_the_prompt_fills_only_its_placeholders():
    item = JudgeItem(question="Find $\\{x\\}$.", answer="\\frac{1}{2}", response="so \\boxed{\\frac{1}{2}}", gold="0.5")
    prompt = render("Q {question} A {answer} R {response} G {gold} {other} {{gold}}", item)
    assert prompt == "Q Find $\\{x\\}$. A \\frac{1}{2} R so \\boxed{\\frac{1}{2}} G 0.5 {other} {0.5}"
    assert "{" not in render(DEFAULT_PROMPT, item).replace("\\{", "").replace("\\frac{1}{2}", "")


class ToyJudgeServer:
    """An OpenAI-compatible chat server written with the standard library.

    Why not only vLLM: these tests need a server that fails on demand (HTTP 500), answers slowly
    so that requests overlap, and counts requests and the most in flight at once; a real vLLM
    server can do none of that. The real vLLM path is tested below with a trained verifier.
    """

    def __init__(self, reply=lambda prompt: "Correct", status: int = 200, delay: float = 0.0) -> None:
        self.reply, self.status, self.delay = reply, status, delay
        self.requests, self.in_flight, self.most_in_flight = 0, 0, 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the standard library's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests += 1
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay)
                    if server.status != 200:
                        payload, status = {"error": "toy failure"}, server.status
                    else:
                        content = server.reply(body["messages"][0]["content"])
                        payload, status = {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}, 200
                finally:
                    with server.lock:
                        server.in_flight -= 1
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def numbers_equal(prompt: str) -> str:
    """A toy verifier: Correct when the prompt's answer and gold are the same number."""
    answer = prompt.split("Answer: ", 1)[1].split("\n", 1)[0]
    gold = prompt.split("Gold: ", 1)[1].split("\n", 1)[0]
    try:
        return "Correct" if float(answer) == float(gold) else "Incorrect"
    except ValueError:
        return "Incorrect"


SHORT = "Answer: {answer}\nGold: {gold}\nEquivalent?"
ROWS = [
    rollout("p", 0, "So \\boxed{12.0}", "12"),  # exact: incorrect; the judge: correct
    rollout("p", 1, "So \\boxed{12}", "12"),  # correct: not asked
    rollout("p", 2, "So \\boxed{13}", "12"),  # incorrect, and the judge agrees
    rollout("p", 3, "<think>unfinished", "12"),  # no answer region: not asked
    rollout("p", 4, "So \\boxed{12.0}", "12"),  # the same request: from the cache
    rollout("q", 0, "Answer:\n", "7"),  # no_answer (nothing after the label): asked
    rollout("q", 1, "So \\boxed{7.0}", "7", finish="length"),  # truncated: not asked
]


def write_prompt(tmp_path, text=SHORT):
    path = tmp_path / "prompt.txt"
    path.write_text(text)
    return path


def test_the_judge_changes_only_what_it_calls_correct_and_caches(cli, tmp_path):
    rollouts = write_rollouts(tmp_path / "r.parquet", ROWS)
    with ToyJudgeServer(numbers_equal) as server:
        result = cli("grade", rollouts, "-o", tmp_path / "graded", "--grader", "exact", "--workers", "1", "--audit", "none",
                     "--judge", server.url, "--judge-model", "toy", "--judge-prompt", write_prompt(tmp_path), "--json")
        assert result.exit_code == 0, result.output
        assert server.requests == 3  # (12.0, 12), (13, 12), (the cut answer, 7): row 4 is a cache hit
    table = read_table(str(tmp_path / "graded"), GRADES)
    assert table.column("verdict").to_pylist() == ["correct", "correct", "incorrect", "no_answer", "correct", "no_answer", "truncated"]
    assert table.column("rule_verdict").to_pylist() == ["incorrect", "correct", "incorrect", "no_answer", "incorrect", "no_answer", "truncated"]
    assert table.column("judge_verdict").to_pylist() == ["correct", None, "incorrect", None, "correct", "incorrect", None]
    assert table.column("judge_reply").to_pylist()[:3] == ["Correct", None, "Incorrect"]
    assert table.column("scored").to_pylist() == [True] * 7
    judge = json.loads(result.stdout)["judge"]
    assert (judge["asked"], judge["changed"], judge["changes"]) == (4, 2, {"incorrect -> correct": 2})
    assert (judge["requests"], judge["cache_hits"], judge["failed_requests"]) == (3, 1, 0)
    assert json.loads(result.stdout)["mean_pass_rate"] == pytest.approx((3 / 5 + 0 / 2) / 2)
    assert "verdicts changed to correct" in result.stderr
    shown = cli("inspect", tmp_path / "graded", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["evaluation"]["judge"]["changed"] == 2
    assert "verdicts the judge changed" in cli("inspect", tmp_path / "graded").stderr


@pytest.mark.parametrize("status", [500, None], ids=["HTTP 500", "server down"])
def test_a_failing_judge_keeps_the_rule_verdicts_and_is_counted(tmp_path, status):
    rows = [rollout(f"p{i}", 0, f"So \\boxed{{{i}.5}}", str(i)) for i in range(12)]
    rollouts = write_rollouts(tmp_path / "r.parquet", rows)
    config = dict(rollouts=str(rollouts), output=str(tmp_path / "graded"), grader="numeric", workers=1, audit=None, judge_model="toy", judge_concurrency=1)
    if status is None:
        result = run_grade(GradeConfig(judge=f"http://127.0.0.1:{free_port()}/v1", **config))
    else:
        with ToyJudgeServer(status=status) as server:
            result = run_grade(GradeConfig(judge=server.url, **config))
    table = read_table(str(tmp_path / "graded"), GRADES)
    assert table.column("verdict").to_pylist() == ["incorrect"] * 12
    assert table.column("judge_verdict").to_pylist() == ["failed"] * 12
    replies = table.column("judge_reply").to_pylist()
    assert ("HTTP 500" if status else "connection error") in replies[0]
    # After 8 failures in a row the judge is not asked again in this run.
    assert replies[-1] == "not asked: the judge failed 8 times in a row in this run"
    judge = result.summary["judge"]
    assert judge["readings"]["failed"] == 12 and judge["changed"] == 0 and judge["gave_up"]
    assert judge["requests"] == 8 and judge["failed_requests"] == 12


def test_judge_requests_are_bounded_by_the_concurrency(tmp_path):
    rows = [rollout(f"p{i}", 0, f"So \\boxed{{{i}.5}}", str(i)) for i in range(12)]
    rollouts = write_rollouts(tmp_path / "r.parquet", rows)
    with ToyJudgeServer(lambda prompt: "Incorrect", delay=0.3) as server:
        run_grade(GradeConfig(rollouts=str(rollouts), output=str(tmp_path / "graded"), grader="numeric", workers=1, audit=None,
                              judge=server.url, judge_model="toy", judge_concurrency=3))
        assert server.requests == 12
        assert 1 < server.most_in_flight <= 3


def test_judge_flags_are_checked(cli, tmp_path):
    rollouts = write_rollouts(tmp_path / "r.parquet", ROWS)
    out = tmp_path / "graded"
    assert_user_error(cli("grade", rollouts, "-o", out, "--judge", "http://127.0.0.1:1/v1"), "--judge and --judge-model go together")
    assert_user_error(cli("grade", rollouts, "-o", out, "--judge", "localhost:8000", "--judge-model", "m"), "--judge 'localhost:8000': give the server's OpenAI base URL")
    assert_user_error(
        cli("grade", rollouts, "-o", out, "--judge", "http://h/v1", "--judge-model", "m", "--judge-prompt", tmp_path / "missing.txt"),
        f"--judge-prompt {tmp_path / 'missing.txt'}: cannot be read",
    )
    assert_user_error(
        cli("grade", rollouts, "-o", out, "--judge", "http://h/v1", "--judge-model", "m", "--judge-prompt", write_prompt(tmp_path, "Is {answer} right?")),
        "--judge-prompt: the template must contain {gold} and {answer} or {response}",
    )
    assert not out.exists()
    # The judge changes rows: a resumed output must have been made with the same judge.
    settings = GradeConfig(rollouts="r", output="o", judge="http://h/v1", judge_model="m").settings()
    assert settings["judge"]["model"] == "m" and "url" not in settings["judge"]


@pytest.fixture(scope="module")
def verifier_server(tmp_path_factory, toy_cache):
    """A real vLLM server serving the toy yes/no verifier (trained once per session in the toy cache)."""
    import os

    from paced_curate.toy.verifier import trained_verifier

    cache = os.environ.get("PACED_CACHE")
    os.environ["PACED_CACHE"] = str(toy_cache)
    try:
        model = trained_verifier()
    finally:
        os.environ.pop("PACED_CACHE") if cache is None else os.environ.__setitem__("PACED_CACHE", cache)
    log = tmp_path_factory.mktemp("verifier_server") / "server.log"
    # An explicit KV cache: vLLM's own CPU sizing can go negative on a busy machine (FIELD-NOTES).
    extra = ("--served-model-name", "toy-verifier", "--max-model-len", "128", "--dtype", "float32", "--kv-cache-memory-bytes", str(256 * 2**20))
    with serve_vllm(model, log, *extra) as url:
        yield url


def test_judge_end_to_end_against_a_real_vllm_server(cli, tmp_path, verifier_server):
    """The toy verifier says "7.0 = 7" (exact: wrong) is equivalent and "3.0 = 7", "7.5 = 3" are not."""
    from paced_curate.toy.verifier import VERIFIER_PROMPT

    rows = [
        rollout("a", 0, "So \\boxed{7.0}", "7"), rollout("a", 1, "So \\boxed{3.0}", "7"), rollout("a", 2, "So \\boxed{7}", "7"),
        rollout("b", 0, "So \\boxed{3.0}", "3"), rollout("b", 1, "So \\boxed{7.5}", "3"), rollout("b", 2, "So \\boxed{3.0}", "3"),
    ]
    rollouts = write_rollouts(tmp_path / "r.parquet", rows)
    result = cli("grade", rollouts, "-o", tmp_path / "graded", "--grader", "exact", "--workers", "1", "--audit", "none",
                 "--judge", verifier_server, "--judge-model", "toy-verifier", "--judge-prompt", write_prompt(tmp_path, VERIFIER_PROMPT),
                 "--judge-max-tokens", "4", "--json")
    assert result.exit_code == 0, result.output
    table = read_table(str(tmp_path / "graded"), GRADES)
    assert table.column("rule_verdict").to_pylist() == ["incorrect", "incorrect", "correct", "incorrect", "incorrect", "incorrect"]
    assert table.column("judge_reply").to_pylist() == ["yes", "no", None, "yes", "no", "yes"]
    assert table.column("judge_verdict").to_pylist() == ["correct", "incorrect", None, "correct", "incorrect", "correct"]
    assert table.column("verdict").to_pylist() == ["correct", "incorrect", "correct", "correct", "incorrect", "correct"]
    judge = json.loads(result.stdout)["judge"]
    assert (judge["asked"], judge["changed"], judge["requests"], judge["cache_hits"], judge["failed_requests"]) == (5, 3, 4, 1, 0)
    shown = cli("inspect", tmp_path / "graded", "--json")
    assert json.loads(shown.stdout)["evaluation"]["judge"]["changed"] == 3
