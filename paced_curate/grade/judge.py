"""A verifier model as a second opinion (`paced grade --judge URL --judge-model NAME`).

Rule-based reading misses correct answers written in ways no rule knows (TinyV, arXiv
2505.14625, found rule-based verifiers reject over 38% of correct answers on Big-Math); verifier
models trained for this (xVerify, arXiv 2504.10481; CompassVerifier, arXiv 2508.03686) judge an
answer against the gold. The judge is asked only where the rules say `incorrect` or
`no_answer` (and the completion has an answer region: not an unclosed trace), over any
OpenAI-compatible server (`/v1/chat/completions`, temperature 0). Its reply is parsed robustly
(`parse_judge_reply`); a reply meaning "correct" turns the verdict into `correct`, anything else
keeps the rule verdict. Every request is cached by its rendered prompt (with the default prompt,
by question, answer and gold), at most `concurrency` requests are in flight, a failed request (a
connection error, a timeout, HTTP 5xx or 429 after retries) keeps the rule verdict and is
counted, and after `MAX_FAILURES_IN_A_ROW` failures in a row the judge is no longer asked in
this run (each remaining row is counted as failed, with that reason).

    judge = Judge(JudgeSettings(url="http://127.0.0.1:8000/v1", model="verifier"))
    judge.ask([JudgeItem(question="...", answer="2:15", response="...", gold="2:15 PM")])
    # [('correct', 'Correct')]

Columns it adds (schema.GRADES, optional): `rule_verdict` (what the rules said), `judge_verdict`
(null where not asked; correct, incorrect, invalid, unreadable or failed) and `judge_reply` (the
reply, or why the request failed).
"""

from __future__ import annotations

import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from paced_curate.errors import ConfigError
from paced_curate.schema import JUDGE_VERDICTS  # noqa: F401 (re-exported)

JUDGED = ("incorrect", "no_answer")
"""Rule verdicts the judge is asked about."""
PLACEHOLDERS = ("question", "answer", "response", "gold")
MAX_FAILURES_IN_A_ROW = 8
RETRIES = 2
BACKOFF_S = 0.5
REPLY_LIMIT = 2000
ANSWER_LIMIT = 1000
RESPONSE_LIMIT = 4000

DEFAULT_PROMPT = """You check whether a student's final answer to a problem matches the reference answer.

Problem:
{question}

Student's final answer:
{answer}

Reference answer:
{gold}

The answers match when they mean the same thing: the same number, expression, set, interval, choice or text, in any notation, units or wording. A different, incomplete or hedged answer does not match. Reply with one word: Correct or Incorrect."""


@dataclass(frozen=True)
class JudgeSettings:
    """Where the verifier is served and how it is asked."""

    url: str
    """The server's OpenAI base URL (e.g. http://127.0.0.1:8000/v1)."""
    model: str
    """The served model name."""
    prompt: str = DEFAULT_PROMPT
    """The request: a template with {question}, {answer}, {response} and {gold} (answer or response, and gold, required)."""
    concurrency: int = 8
    """Most requests in flight."""
    max_tokens: int = 64
    """Longest reply, in tokens."""
    timeout: float = 120.0
    """Seconds one request may take."""

    def __post_init__(self) -> None:
        problems = []
        if not self.url.startswith(("http://", "https://")):
            problems.append(f"--judge {self.url!r}: give the server's OpenAI base URL, e.g. http://127.0.0.1:8000/v1")
        if not self.model.strip():
            problems.append("--judge-model: give the served model's name")
        if "{gold}" not in self.prompt or ("{answer}" not in self.prompt and "{response}" not in self.prompt):
            problems.append("--judge-prompt: the template must contain {gold} and {answer} or {response}")
        if self.concurrency < 1:
            problems.append(f"--judge-concurrency must be at least 1 (got {self.concurrency})")
        if self.max_tokens < 1:
            problems.append(f"--judge-max-tokens must be at least 1 (got {self.max_tokens})")
        if problems:
            raise ConfigError("; ".join(problems))


def load_prompt(path: str | None) -> str:
    """The judge's prompt template: the text of `path`, or the default when None.

    Raises:
        ConfigError: the file cannot be read.
    """
    if path is None:
        return DEFAULT_PROMPT
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"--judge-prompt {path}: cannot be read ({error.strerror or error})") from None


@dataclass(frozen=True)
class JudgeItem:
    """What the judge is shown for one sample."""

    question: str
    answer: str
    """The answer the rules read (their extracted answer), else the end of the answer region."""
    response: str
    """The completion after its reasoning trace (its last RESPONSE_LIMIT characters)."""
    gold: str


PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def render(template: str, item: JudgeItem) -> str:
    """The prompt for `item`: only the four placeholders are replaced, so LaTeX braces in the
    template or in the texts stay as they are."""
    values = {"question": item.question, "answer": item.answer[-ANSWER_LIMIT:], "response": item.response[-RESPONSE_LIMIT:], "gold": item.gold}
    return PLACEHOLDER_RE.sub(lambda match: values[match.group(1)], template)


# --- reading the reply --------------------------------------------------------------------------

POSITIVE = r"correct|yes|true|equivalent|right|consistent|same|matches|match"
NEGATIVE = r"incorrect|not\s+correct|no|false|not\s+equivalent|inequivalent|wrong|inconsistent|different|mismatch|does\s+not\s+match|not\s+the\s+same"
LABEL_RE = re.compile(
    r"(?:final\s+)?(?:judge?ment|verdict|answer|grade|result|decision|evaluation|conclusion)\s*(?:is|:|\uff1a|=)?\s*"
    r"[\[(*\"'`\s]*([A-Za-z][A-Za-z\s]*?)[\])*\"'`.!\s]*$",
    re.IGNORECASE | re.MULTILINE,
)
BRACKETED_RE = re.compile(r"\\boxed\{\s*([^{}]+?)\s*\}|\[\[\s*([^\[\]]+?)\s*\]\]|\[\s*(correct|incorrect)\s*\]", re.IGNORECASE)


def _label(word: str) -> str | None:
    word = re.sub(r"\s+", " ", word.strip().strip(".!*\"'`[]()").strip()).lower()
    if word in ("a", "1"):
        return "correct"
    if word in ("b", "0"):
        return "incorrect"
    if word in ("c", "invalid"):
        return "invalid"
    if re.fullmatch(rf"(?:{NEGATIVE})", word):
        return "incorrect"
    if re.fullmatch(rf"(?:{POSITIVE})", word):
        return "correct"
    return None


def parse_judge_reply(reply: str) -> str:
    """What a verifier's reply means: correct, incorrect, invalid or unreadable.

    Read, in order: the text after a reasoning trace (`</think>`); a boxed or double-bracketed
    label (`\\boxed{A}`, `[[B]]`, `[Correct]`); a labelled line ("Judgement: Correct", "Final
    verdict: no"); the whole reply as one label; its first word, then its last. Labels: Correct,
    Yes, True, Equivalent, A (CompassVerifier) mean correct; Incorrect, No, False, Not
    equivalent, B mean incorrect; C or Invalid mean invalid (CompassVerifier's answer that cannot
    be judged). A reply that says both, or neither, is unreadable.
    """
    from paced_curate.grade.graders import DEFAULT_TAGS
    from paced_curate.grade.regions import answer_region

    text = answer_region(reply, DEFAULT_TAGS) or ""
    text = text.replace("**", "").strip()
    if not text:
        return "unreadable"
    boxed = BRACKETED_RE.findall(text)
    if boxed:
        label = _label(next(part for part in boxed[-1] if part))
        if label:
            return label
    labelled = [match.group(1) for match in LABEL_RE.finditer(text)]
    for candidate in reversed(labelled):
        if label := _label(candidate):
            return label
    if label := _label(text):
        return label
    has_negative = re.search(rf"\b(?:{NEGATIVE})\b", text, re.IGNORECASE) is not None
    without_negative = re.sub(rf"\b(?:{NEGATIVE})\b", " ", text, flags=re.IGNORECASE)
    has_positive = re.search(rf"\b(?:{POSITIVE})\b", without_negative, re.IGNORECASE) is not None
    if has_negative and has_positive:
        return "unreadable"  # a reply that says both is no second opinion
    words = re.findall(r"[A-Za-z]+", text)
    if words:
        first = _label(words[0]) if len(words[0]) > 1 else None
        if first:
            return first
        two = _label(" ".join(words[:2]))
        if two:
            return two
    if has_negative:
        return "incorrect"
    if has_positive:
        return "correct"
    return "unreadable"


# --- asking ---------------------------------------------------------------------------------


@dataclass
class JudgeStats:
    """What the judge did in this run."""

    requests: int = 0
    """Requests sent (distinct prompts)."""
    cache_hits: int = 0
    """Rows answered from the cache."""
    failures: int = 0
    """Requests (or rows, once the judge was given up) that kept the rule verdict because the server failed."""
    gave_up: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class Judge:
    """Asks a verifier served over the OpenAI API; see the module docstring."""

    def __init__(self, settings: JudgeSettings) -> None:
        import httpx

        self.settings = settings
        self.cache: dict[str, tuple[str, str]] = {}
        self.stats = JudgeStats()
        self._in_a_row = 0
        limits = httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
        self.client = httpx.Client(timeout=settings.timeout, limits=limits)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ask(self, items: list[JudgeItem]) -> list[tuple[str, str]]:
        """(judge verdict, reply or failure message) for each item, in order."""
        prompts = [render(self.settings.prompt, item) for item in items]
        todo = list(dict.fromkeys(prompt for prompt in prompts if prompt not in self.cache))
        self.stats.cache_hits += len(prompts) - len(todo)
        if todo:
            with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
                for prompt, answer in zip(todo, pool.map(self._one, todo)):
                    self.cache[prompt] = answer
        return [self.cache[prompt] for prompt in prompts]

    def _one(self, prompt: str) -> tuple[str, str]:
        if self.stats.gave_up:
            with self.stats.lock:
                self.stats.failures += 1
            return "failed", f"not asked: the judge failed {MAX_FAILURES_IN_A_ROW} times in a row in this run"
        with self.stats.lock:
            self.stats.requests += 1
        try:
            reply = self._post(prompt)
        except RuntimeError as error:
            with self.stats.lock:
                self.stats.failures += 1
                self._in_a_row += 1
                if self._in_a_row >= MAX_FAILURES_IN_A_ROW:
                    self.stats.gave_up = True
            return "failed", str(error)[:REPLY_LIMIT]
        with self.stats.lock:
            self._in_a_row = 0
        return parse_judge_reply(reply), reply[:REPLY_LIMIT]

    def _post(self, prompt: str) -> str:
        import httpx

        body = {
            "model": self.settings.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.0,
            "max_tokens": self.settings.max_tokens,
        }
        url = self.settings.url.rstrip("/") + "/chat/completions"
        last = ""
        for attempt in range(RETRIES + 1):
            if attempt:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1) * (0.5 + random.random() / 2))
            try:
                response = self.client.post(url, json=body)
            except httpx.TimeoutException as error:
                last = f"timeout ({type(error).__name__})"
                continue
            except httpx.TransportError as error:
                last = f"connection error ({type(error).__name__}: {error})"
                continue
            except httpx.HTTPError as error:  # an invalid URL, a protocol error: no retry helps
                raise RuntimeError(f"judge request failed: {type(error).__name__}: {error}") from None
            if response.status_code == 200:
                try:
                    return response.json()["choices"][0]["message"]["content"] or ""
                except (ValueError, KeyError, IndexError, TypeError):
                    raise RuntimeError(f"the judge's answer is not a chat completion: {response.text[:200]}") from None
            last = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code < 500 and response.status_code != 429:
                break
        raise RuntimeError(f"judge request failed after {attempt + 1} attempts: {last}")
