"""The batch's stand-ins for SuppressTokens and top-p give the library processors' scores exactly."""

from __future__ import annotations

import torch
from transformers import LogitsProcessorList
from transformers.generation import logits_process as lp

from chathuman_hf.chat.fast_processors import CandidateTopP, MaskedSuppressTokens, faster_processors


def library_and_ours(top_k: int = 50, top_p: float = 0.92, suppress=range(300, 1000)):
    library = LogitsProcessorList([lp.SuppressTokensLogitsProcessor(list(suppress)), lp.TemperatureLogitsWarper(0.8),
                                   lp.TopKLogitsWarper(top_k), lp.TopPLogitsWarper(top_p)])
    return library, faster_processors(library)


def test_stand_ins_replace_only_what_they_match():
    library, ours = library_and_ours()
    assert [type(p) for p in ours] == [MaskedSuppressTokens, lp.TemperatureLogitsWarper, lp.TopKLogitsWarper,
                                       CandidateTopP]
    alone = faster_processors(LogitsProcessorList([lp.TopPLogitsWarper(0.9)]))  # no top-k before it: unchanged
    assert type(alone[0]) is lp.TopPLogitsWarper


def test_stand_ins_give_the_library_scores_on_random_and_tied_logits():
    generator = torch.Generator().manual_seed(0)
    ids = torch.zeros((6, 3), dtype=torch.long)
    for top_k, top_p in [(50, 0.92), (5, 0.5), (1, 0.9), (2000, 0.99)]:
        library, ours = library_and_ours(top_k, top_p)
        for _ in range(3):
            scores = torch.randn((6, 1000), generator=generator) * 3
            scores[1, :600] = 7.0  # ties across the k-th score: more than k candidates survive top-k
            scores[2, 100:] = -float("inf")  # fewer finite scores than k
            expected = scores.clone()
            for p in library:
                expected = p(ids, expected)
            got = scores.clone()
            for p in ours:
                got = p(ids, got)
            assert torch.equal(got, expected)


def test_grouped_processing_equals_each_reply_alone_on_histories_of_different_lengths(tiny_model_dir):
    """Repetition penalty and bad words run once on the group's left-padded histories: the scores (and so the
    greedy tokens) are those of each reply's own processors on its own history."""
    from chathuman_hf.chat import ChatEngine, get_preset
    from chathuman_hf.chat.decoding import PADDED, Job, choose_tokens, prepare_job

    engine = ChatEngine.from_pretrained(tiny_model_dir)
    config = engine.generation_config(get_preset("greedy", repetition_penalty=1.5, no_repeat_ngram_size=2))
    prepared, jobs = {}, []
    for text in ("안녕", "오늘 하루 너무 길었어 정말 너무", "비"):
        job = Job(engine.prompt_ids([{"role": "user", "content": text}], max_new_tokens=8), config, float("inf"))
        prepare_job(engine.model, job, prepared)
        jobs.append(job)
    assert {type(p) for p in jobs[0].processors} & set(PADDED)  # the grouped path is taken
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        logits = torch.randn((3, engine.model.config.vocab_size), generator=generator)
        expected = []
        for r, job in enumerate(jobs):
            scores = logits[r:r + 1]
            for p in job.processors:
                scores = p(job.history, scores)
            expected.append(int(scores.argmax()))
        assert choose_tokens(jobs, logits).tolist() == expected
