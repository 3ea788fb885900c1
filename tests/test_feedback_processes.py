"""The feedback log under real server processes (``recipes/serve.py --feedback_log``): two servers appending to one
file never interleave, and a server killed with SIGKILL in the middle of a burst of ratings leaves a file whose every
line parses and holds every rating it acknowledged; the second server serves two models (``--model A --model B``) and
its lines carry the rated model's name (issue 30)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from chathuman_hf.serving.runner import free_port

# A long conversation (the model sees its end) makes each line ~50 kB, so the kill has lines to land in.
LONG_CHAT = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"{i}번째 말 " + "가나다라마" * 190}
             for i in range(18)] + [{"role": "user", "content": "그래서 오늘 뭐 해"}]


def start(repo_root: Path, models: list[Path], log: Path, out: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, str(repo_root / "recipes/serve.py"), "--host", "127.0.0.1", "--port", str(port),
               "--feedback_log", str(log), "--preset", "greedy", "--max-new-tokens", "3", "--no_skills",
               "--log_level", "warning"]
    for model in models:
        command += ["--model", str(model)]
    proc = subprocess.Popen(command, stdout=out.open("w"), stderr=subprocess.STDOUT, cwd=repo_root,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    return proc, f"http://127.0.0.1:{port}"


def wait_up(proc: subprocess.Popen, url: str, out: Path) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            httpx.get(url + "/healthz", timeout=5)
            return
        except httpx.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-2000:]
            time.sleep(0.3)


def tag(server: int, n: int) -> str:
    """A comment that names its post without digits (the PII scrub leaves it whole)."""
    return f"평가 {'가나'[server]}{chr(0xAC00 + n)}"


@pytest.fixture(scope="module")
def servers(tiny_model_dir, repo_root, tmp_path_factory):
    """Two ``serve.py`` processes appending to one log, the second with two models; each has made one long
    completion to rate (the second with its second model)."""
    root = tmp_path_factory.mktemp("feedback_processes")
    log = root / "feedback.jsonl"
    other = shutil.copytree(tiny_model_dir, root / "other" / tiny_model_dir.name)
    started = [start(repo_root, models, log, root / f"serve{i}.out")
               for i, models in enumerate([[tiny_model_dir], [tiny_model_dir, other]])]
    try:
        ids = []
        for i, (proc, url) in enumerate(started):
            wait_up(proc, url, root / f"serve{i}.out")
            model = httpx.get(url + "/v1/models").json()["data"][-1]["id"]
            done = httpx.post(url + "/v1/chat/completions", json={"messages": LONG_CHAT, "model": model}, timeout=120)
            assert done.status_code == 200, done.text
            ids.append(done.json()["id"])
        yield log, [(proc, url, completion) for (proc, url), completion in zip(started, ids, strict=True)]
    finally:
        for proc, _ in started:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)


def burst(url: str, completion: str, server: int, count: int, acknowledged: list[str],
          after: int | None = None, then: threading.Event | None = None) -> None:
    """``count`` ratings from 8 threads; the comment of each acknowledged one goes to ``acknowledged``; ``then`` is
    set once ``after`` of them were acknowledged."""
    lock = threading.Lock()

    def post(n: int) -> None:
        comment = tag(server, n)
        try:
            answer = httpx.post(url + "/v1/feedback", json={"id": completion, "rating": 1 if n % 2 else -1,
                                                            "comment": comment}, timeout=60)
        except httpx.TransportError:
            return  # the server was killed
        if answer.status_code == 200:
            with lock:
                acknowledged.append(comment)
                if then is not None and len(acknowledged) == after:
                    then.set()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(count)))


def test_two_servers_share_one_log_and_a_server_killed_mid_burst_leaves_whole_lines(servers, tiny_model_dir):
    """Both servers rate at once; server 0 is killed with SIGKILL once 20 of its ratings were answered. Every line
    parses; server 1's ratings are all there, once each; each rating server 0 answered is there."""
    log, running = servers
    (killed, *_), _ = running
    folder = tiny_model_dir.name
    acknowledged: list[list[str]] = [[], []]
    some_written = threading.Event()
    threads = [threading.Thread(target=burst, args=(url, completion, i, (300, 40)[i], acknowledged[i], 20,
                                                    some_written if i == 0 else None))
               for i, (_, url, completion) in enumerate(running)]
    for thread in threads:
        thread.start()
    assert some_written.wait(120)
    os.kill(killed.pid, signal.SIGKILL)
    for thread in threads:
        thread.join(300)
    assert killed.wait(30) == -signal.SIGKILL
    raw = log.read_bytes()
    assert raw.endswith(b"\n")
    events = [json.loads(line) for line in raw.decode("utf-8").splitlines()]  # every line parses: no half line
    assert all(e["messages"] == LONG_CHAT for e in events)
    comments = [e["comment"] for e in events]
    assert {e["model"] for e in events if e["comment"].startswith(tag(1, 0)[:4])} == {f"other/{folder}"}  # model B
    survivor = sorted(c for c in comments if c.startswith(tag(1, 0)[:4]))
    assert survivor == sorted(tag(1, n) for n in range(40)) and len(acknowledged[1]) == 40  # none lost, none twice
    written = set(comments) & {tag(0, n) for n in range(300)}
    assert set(acknowledged[0]) <= written  # an answered rating is on disk (written and fsynced before the answer)
    assert 20 <= len(written) < 300  # the kill did cut the burst short
