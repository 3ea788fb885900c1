"""``openai_api.late_errors``: the one rule for errors of the OpenAI-style streams (chat, n choices, completions)."""

from __future__ import annotations

import json

import pytest

from chathuman_hf.chat import EngineBusy
from chathuman_hf.serving.openai_api import late_errors

BUSY = EngineBusy("The server is busy: 4 replies are running or queued (limit 4).", retry_after=1)


def events(*items, closed: list | None = None):
    try:
        for item in items:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        if closed is not None:
            closed.append(True)


def test_a_full_engine_before_the_first_event_propagates_for_a_503():
    with pytest.raises(EngineBusy):
        list(late_errors(events(BUSY, "data: a\n\n")))


def test_after_the_first_event_a_refusal_or_a_failure_ends_the_stream_in_band():
    busy = list(late_errors(events("data: a\n\n", BUSY)))
    failed = list(late_errors(events("data: a\n\n", RuntimeError("simulated GPU failure"))))
    assert busy[0] == failed[0] == "data: a\n\n" and busy[-1] == failed[-1] == "data: [DONE]\n\n"
    assert json.loads(busy[1][6:])["error"]["type"] == "server_busy"
    assert json.loads(failed[1][6:])["error"] == {"message": "Generation failed: simulated GPU failure",
                                                  "type": "server_error", "param": None, "code": None}


def test_a_failure_before_any_event_is_in_band_too_and_leaving_closes_the_source():
    assert json.loads(list(late_errors(events(ValueError("bad"))))[0][6:])["error"]["message"] == \
        "Generation failed: bad"
    closed: list = []
    stream = late_errors(events("data: a\n\n", "data: b\n\n", closed=closed))
    assert next(stream) == "data: a\n\n"
    stream.close()  # the client went away
    assert closed == [True]
