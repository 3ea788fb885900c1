"""The simulated person of ``bench.feedback_loop``: the rating rule, the person who chats with a served model over
HTTP and rates what it gets (on the chat page's endpoints, ``PagePerson``, or the OpenAI-style API, ``Client``), and
the pass rate of a served model on held-out prompts under the same rule.

The rule (fixed before any model was measured; the issue's own example): a reply gets 👍 when

- it has a speech level (``chathuman_hf.korean.analysis.speech_level`` is ``plain`` or ``polite``), and
- that level is the user's (반말 answered in 반말, 존댓말 in 존댓말; a user message with no level accepts either), and
- it is not a repeat: not the user's message again, and no word twice in a row;

👎 otherwise. The person sends one user message, rates the reply, and when it was 👎 presses 다시 once (on the API: a
second completion for the same messages) and rates that one too: a 👍 and a 👎 for the same context make a pair. With
``edit``, a person whose second reply was still at the wrong level also corrects it in the edit box: the reply
rewritten to the user's level (``chathuman_hf.korean.conversion.convert``), kept when it passes the rule, is
preferred to the model's (a ``pair`` event, ``how="edit"``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chathuman_hf.korean.analysis import UNDETERMINED, speech_level

_WORD = re.compile(r"[^\w]+")
# Kiwi's best analysis, log-probability per character (spaces left out): 95% of ChatbotData's answers rewritten to
# 반말 score above this (bench/RESULTS.md § 18b); broken replies such as 충전할형 해요. score -6 to -8
FLUENT_PER_CHAR = -4.9


def _norm(text: str) -> str:
    return _WORD.sub(" ", text).strip()


def is_repeat(user: str, reply: str) -> bool:
    """The reply says the user's message again, or has the same word twice in a row."""
    words = _norm(reply).split()
    return _norm(reply) == _norm(user) or any(a == b for a, b in zip(words, words[1:], strict=False))


def judge(user: str, reply: str) -> tuple[bool, str]:
    """``(passes, why)`` for one reply to the user's last message (see the module docstring)."""
    if not reply.strip():
        return False, "empty"
    if is_repeat(user, reply):
        return False, "repeat"
    level, wanted = speech_level(reply), speech_level(user)
    if level == UNDETERMINED:
        return False, "no_level"
    if wanted != UNDETERMINED and level != wanted:
        return False, f"{level}_to_{wanted}"
    return True, "ok"


def fluent(text: str) -> bool:
    """The reply reads as Korean: Kiwi's analysis of it is as likely per character as 95% of real answers in 반말.
    Not part of the rating rule: the judge reports the pass rate of fluent replies beside the rule's."""
    from chathuman_hf.korean.analysis import kiwi

    chars = len("".join(text.split()))
    return chars > 0 and kiwi().analyze(text)[0][1] / chars >= FLUENT_PER_CHAR


class Client:
    """The OpenAI-style endpoints of one server: a reply (its completion id) and a rating posted for it."""

    def __init__(self, base: str, model: str | None = None, timeout: float = 300.0) -> None:
        import httpx

        self.http = httpx.Client(base_url=base, timeout=timeout)
        self.model = model or self.http.get("/v1/models").json()["data"][0]["id"]

    def reply(self, messages: list[dict[str, str]]) -> tuple[str, str]:
        """``(completion id, text)`` with the server's own sampling settings (no sampling field sent)."""
        response = self.http.post("/v1/chat/completions", json={"model": self.model, "messages": messages})
        response.raise_for_status()
        body = response.json()
        return body["id"], body["choices"][0]["message"]["content"]

    def rate(self, completion_id: str, rating: int) -> None:
        response = self.http.post("/v1/feedback", json={"id": completion_id, "rating": rating})
        response.raise_for_status()


def edited(user: str, reply: str) -> str | None:
    """The reply rewritten to the user's speech level, when that passes the rule (else None)."""
    from chathuman_hf.korean.conversion import convert

    wanted = speech_level(user)
    if wanted == UNDETERMINED or not judge(user, reply)[1].endswith(f"_to_{wanted}"):
        return None
    text = convert(reply, wanted)
    return text if judge(user, text)[0] else None


class PagePerson:
    """The chat page's own endpoints, called as its buttons call them: a message in a new conversation
    (``/page/api/chat``), 👍/👎 (``/page/api/rate``), 다시 (``/page/api/regenerate/stream``; a 👍 on the new sibling
    keeps it over the old one, a ``retry`` pair) and 고치기 (``/page/api/edit``, an ``edit`` pair)."""

    def __init__(self, base: str, timeout: float = 300.0) -> None:
        import httpx

        self.http = httpx.Client(base_url=base, timeout=timeout)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        if not path.endswith("/stream"):
            return response.json()
        events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
        done = [e for e in events if e["type"] in ("done", "error")][-1]
        if done["type"] == "error":
            raise RuntimeError(f"{path}: {done['message']}")
        return done

    def ask(self, user: str) -> tuple[dict[str, Any] | None, str]:
        """A new conversation's first reply: ``(reply reference or None for a skill's answer, text)``."""
        body = self.post("/page/api/chat", {"message": user})
        ref = None if body["index"] is None else {"session_id": body["session_id"], "index": body["index"]}
        return ref, body["reply"]

    def rate(self, ref: dict[str, Any], rating: int, sibling: int = 0) -> None:
        self.post("/page/api/rate", {**ref, "rating": rating, "sibling": sibling})

    def retry(self, ref: dict[str, Any]) -> tuple[int, str]:
        """다시: ``(sibling number, text)`` of the new reply."""
        done = self.post("/page/api/regenerate/stream", ref)
        return done["sibling"], done["reply"]

    def edit(self, ref: dict[str, Any], text: str) -> None:
        self.post("/page/api/edit", {**ref, "text": text})


def rate_on_page(person: PagePerson, prompts: list[str], threads: int = 8, edit: bool = False) -> list[dict[str, Any]]:
    """Each prompt in a new conversation on the page: the reply rated, after a 👎 다시 once and the new sibling rated
    (👍 keeps it: a retry pair), and with ``edit`` a reply still at the wrong level corrected (module docstring).
    Returns one record per rated reply (a skill's answer is not rated: ``skill`` records)."""

    def one(user: str) -> list[dict[str, Any]]:
        ref, text = person.ask(user)
        if ref is None:
            return [{"user": user, "reply": text, "skill": True, "pass": False, "attempt": 0}]
        records, sibling = [], 0
        for attempt in range(2):
            if attempt:
                sibling, text = person.retry(ref)
            ok, why = judge(user, text)
            person.rate(ref, 1 if ok else -1, sibling)
            records.append({"user": user, "reply": text, "pass": ok, "why": why, "attempt": attempt})
            if ok:
                break
        correction = edited(user, text) if edit and not records[-1]["pass"] else None
        if correction is not None:
            person.edit(ref, correction)
            records[-1]["edited"] = correction
        return records

    with ThreadPoolExecutor(threads) as pool:
        return [r for records in pool.map(one, prompts) for r in records]


def rate_prompts(client: Client, prompts: list[str], threads: int = 8,
                 edit: Callable[[list[dict], str, str], None] | None = None) -> list[dict[str, Any]]:
    """The same person on the OpenAI-style API: each reply rated with ``POST /v1/feedback``, a 👎 answered by a
    second completion (rated too; prepare.py pairs a 👍 and a 👎 of one context); ``edit(messages, corrected,
    original)``, when given, writes the correction (the API has no edit endpoint). One record per rated reply."""

    def person(user: str) -> list[dict[str, Any]]:
        messages = [{"role": "user", "content": user}]
        records = []
        for attempt in range(2):
            completion_id, text = client.reply(messages)
            ok, why = judge(user, text)
            client.rate(completion_id, 1 if ok else -1)
            records.append({"user": user, "reply": text, "pass": ok, "why": why, "attempt": attempt})
            if ok:
                break
        correction = edited(user, records[-1]["reply"]) if edit is not None and not records[-1]["pass"] else None
        if correction is not None:
            edit(messages, correction, records[-1]["reply"])
            records[-1]["edited"] = correction
        return records

    with ThreadPoolExecutor(threads) as pool:
        return [r for records in pool.map(person, prompts) for r in records]


def pass_rate(client: Client, prompts: Iterable[str], threads: int = 8) -> dict[str, Any]:
    """One sampled reply per held-out prompt, judged by the rule: the share that passes, why the others fail, the
    replies' distinct-2 and mean length (characters), and the first replies as samples."""
    from collections import Counter

    def one(user: str) -> dict[str, Any]:
        text = client.reply([{"role": "user", "content": user}])[1]
        ok, why = judge(user, text)
        return {"user": user, "reply": text, "pass": ok, "why": why}

    with ThreadPoolExecutor(threads) as pool:
        rows = list(pool.map(one, prompts))
    bigrams = [tuple(w[i:i + 2]) for r in rows for w in [r["reply"].split()] for i in range(len(w) - 1)]
    for row in rows:
        row["fluent"] = fluent(row["reply"])
    return {"replies": len(rows), "pass_rate": sum(r["pass"] for r in rows) / len(rows),
            "fluent_pass_rate": sum(r["pass"] and r["fluent"] for r in rows) / len(rows),
            "why": dict(Counter(r["why"] for r in rows).most_common()),
            "distinct_2": len(set(bigrams)) / len(bigrams) if bigrams else 0.0,
            "mean_chars": sum(len(r["reply"]) for r in rows) / len(rows), "rows": rows}
