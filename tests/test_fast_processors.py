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


def test_no_repeat_ngram_runs_once_on_padded_histories_as_on_each_row():
    """No-repeat-ngram runs once on the group's left-padded histories (-1 padding): each row's bans are its own,
    a row shorter than n bans nothing."""
    from transformers import GenerationConfig

    from chathuman_hf.chat.decoding import Job, _batchable, choose_tokens

    histories = [[5, 6, 7, 5, 6], [1, 2], [9, 9, 9, 9], [3, 4, 8, 3, 4, 8, 3, 4], [6, 7]]
    banned = [7, None, 9, 8, None]
    jobs = []
    for ids in histories:
        job = Job(ids, GenerationConfig(do_sample=False), float("inf"))
        job.history = torch.tensor([ids])
        job.processors = LogitsProcessorList([lp.NoRepeatNGramLogitsProcessor(3)])
        jobs.append(job)
    assert _batchable(jobs[0].processors[0], 0, jobs)
    logits = torch.randn((len(jobs), 20), generator=torch.Generator().manual_seed(0))
    for row, token in enumerate(banned):
        if token is not None:
            logits[row, token] = 10.0  # the best score, unless banned
    logits[1, 7] = logits[4, 5] = 10.0  # a row shorter than 3 keeps its best token
    expected = [int(lp.NoRepeatNGramLogitsProcessor(3)(torch.tensor([ids]), logits[r:r + 1]).argmax())
                for r, ids in enumerate(histories)]
    assert [e != b for e, b in zip(expected, banned, strict=True) if b is not None] == [True, True, True]
    assert expected[1] == 7 and expected[4] == 5
    assert choose_tokens(jobs, logits).tolist() == expected


def test_sampling_among_candidates_keeps_the_distribution():
    """Unseeded rows draw among the ids the warpers left: only those ids come out, with softmax's frequencies; with
    more than ``MAX_CANDIDATES`` left the draw is ``torch.multinomial`` over the whole row."""
    from chathuman_hf.chat.decoding import MAX_CANDIDATES, sample_candidates

    scores = torch.full((8000, 500), -float("inf"))
    scores[:, [17, 300, 499]] = torch.log(torch.tensor([0.5, 0.3, 0.2]))
    scores[::2, 42] = 0.0  # half the rows keep a fourth candidate
    torch.manual_seed(0)
    drawn = sample_candidates(scores)
    odd, even = drawn[1::2], drawn[::2]
    assert set(odd.tolist()) == {17, 300, 499} and set(even.tolist()) == {17, 42, 300, 499}
    for token, p in [(17, 0.5), (300, 0.3), (499, 0.2)]:
        assert abs(float((odd == token).float().mean()) - p) < 0.03
    for token, p in [(42, 1 / 2), (17, 0.5 / 2), (300, 0.3 / 2), (499, 0.2 / 2)]:
        assert abs(float((even == token).float().mean()) - p) < 0.03
    wide = torch.randn((4, MAX_CANDIDATES + 10), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(3)
    expected = torch.multinomial(torch.softmax(wide, dim=-1), num_samples=1)[:, 0]
    torch.manual_seed(3)
    assert torch.equal(sample_candidates(wide), expected)


def test_top_k_then_top_p_drawn_from_one_topk_keeps_the_library_distribution():
    """Unseeded rows ending with top-k (and top-p on its candidates) draw from one ``topk`` of the scores: the tokens
    come with the frequencies of softmax over the library processors' scores; ties across the k-th score fall back."""
    from chathuman_hf.chat.fast_processors import sample_top_k, top_k_tail

    library, ours = library_and_ours(top_k=3, top_p=0.6, suppress=[])
    tail = top_k_tail(ours)
    assert tail == 2 and top_k_tail(LogitsProcessorList([lp.TopPLogitsWarper(0.9)])) == 1
    row = torch.full((50,), -5.0)
    row[[7, 3, 41, 20]] = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1])) * 0.8  # temperature 0.8 undoes the 0.8
    scores = row.repeat(8000, 1)
    expected = scores.clone()
    for p in library:
        expected = p(None, expected)
    probs = torch.softmax(expected[0], dim=-1)
    assert set(torch.nonzero(probs)[:, 0].tolist()) == {7, 3}  # top-3, then top-p 0.6 of 0.44/0.33/0.22
    torch.manual_seed(0)
    warped = scores
    for p in ours[:tail]:
        warped = p(None, warped)
    drawn = sample_top_k(warped, ours[tail:])
    assert set(drawn.tolist()) == {7, 3}
    for token in (7, 3):
        assert abs(float((drawn == token).float().mean()) - float(probs[token])) < 0.03
    tied = warped[:4].clone()
    tied[:, 20] = tied[:, 41]  # the 3rd and 4th best scores tie: top-k keeps both
    assert sample_top_k(tied, ours[tail:]) is None
