"""The verdict cache (warm re-runs, crashes, torn lines), content-derived seeds, calibration and the injection set."""

from __future__ import annotations

import pytest

from lessismore.judge.cache import KeyedCache
from lessismore.judge.protocol import JudgeRun, Reply, build_pairs, judge_pairs
from tests.unit.test_judge import PAIRWISE, RUN, FakeBackend, _prompt, _response

# ---------------------------------------------------------------------------------------------------------------
# the verdict cache, content-derived seeds and calibration


def _two_pairs():
    prompts = [_prompt("Which is the capital of France?"), _prompt("And of Italy?")]
    texts = {"finetuned": ["Paris.", "Rome."], "base": ["Lyon, I think.", "Milan."]}
    responses = [_response(p, m, texts[m][i]) for i, p in enumerate(prompts) for m in texts]
    return build_pairs(prompts, responses, "finetuned", ["base"])[0]


SCRIPT = {k: Reply(text="A", usage={"prompt_tokens": 100, "completion_tokens": 2}) for k in ("Paris", "Rome")}
SCRIPT |= {k: Reply(text="B", usage={"prompt_tokens": 100, "completion_tokens": 2}) for k in ("Lyon", "Milan")}


def test_a_warm_cache_makes_zero_calls_and_gives_the_same_records(tmp_path):
    pairs, cache_file = _two_pairs(), tmp_path / "cache.jsonl"
    priced = JudgeRun("j", "f0", price_in=2.5, price_out=10.0)
    with KeyedCache(cache_file) as cache:
        cold, stats = judge_pairs(pairs, FakeBackend(SCRIPT), PAIRWISE, priced, cache)
    assert stats.calls == 4 and stats.prompt_tokens == 400 and stats.cost_usd == pytest.approx(4 * (250 + 20) / 1e6)
    again = FakeBackend(SCRIPT)
    with KeyedCache(cache_file) as cache:
        warm, stats = judge_pairs(pairs, again, PAIRWISE, priced, cache)
    assert again.asked == [] and (stats.calls, stats.cached) == (0, 4) and warm == cold
    # another judge fingerprint, or another template text, is a different question: asked again
    other = FakeBackend(SCRIPT)
    with KeyedCache(cache_file) as cache:
        judge_pairs(pairs, other, PAIRWISE, JudgeRun("j", "f1"), cache)
    assert len(other.asked) == 4


def test_a_crash_mid_run_keeps_what_was_judged(tmp_path):
    class Crashing(FakeBackend):
        def ask_batches(self, messages, options, seeds):
            for n, batch in enumerate(super().ask_batches(messages, options, seeds)):
                if n == 3:
                    raise ConnectionError("the judge went away")
                yield batch

    pairs, cache_file = _two_pairs(), tmp_path / "cache.jsonl"
    with pytest.raises(ConnectionError), KeyedCache(cache_file) as cache:
        judge_pairs(pairs, Crashing(SCRIPT), PAIRWISE, RUN, cache)
    assert len(cache_file.read_text().splitlines()) == 3
    rest = FakeBackend(SCRIPT)
    with KeyedCache(cache_file) as cache:
        judgments, stats = judge_pairs(pairs, rest, PAIRWISE, RUN, cache)
    assert (stats.calls, stats.cached, len(rest.asked)) == (1, 3, 1)
    assert [j.verdict for j in judgments] == ["a", "b", "a", "b"]


def test_a_torn_last_line_is_cut_and_that_item_judged_again(tmp_path):
    cache_file = tmp_path / "cache.jsonl"
    with KeyedCache(cache_file) as cache:
        judge_pairs(_two_pairs(), FakeBackend(SCRIPT), PAIRWISE, RUN, cache)
    data = cache_file.read_bytes()
    cache_file.write_bytes(data[:-20])  # a kill -9 in the middle of the last line
    rest = FakeBackend(SCRIPT)
    with KeyedCache(cache_file) as cache:
        assert cache.unreadable == 1 and len(cache) == 3
        judge_pairs(_two_pairs(), rest, PAIRWISE, RUN, cache)
    assert len(rest.asked) == 1 and len(cache_file.read_text().splitlines()) == 4


def test_seeds_derive_from_content_so_reruns_ask_for_the_same_draws():
    seen = []

    class Recording(FakeBackend):
        def ask_batches(self, messages, options, seeds):
            seen.append(dict(zip(messages, seeds, strict=True)))
            yield from super().ask_batches(messages, options, seeds)

    judge_pairs(_two_pairs(), Recording(SCRIPT), PAIRWISE, RUN)
    judge_pairs(list(reversed(_two_pairs())), Recording(SCRIPT), PAIRWISE, RUN)
    assert seen[0] == seen[1] and len(set(seen[0].values())) == 4


def test_calibration_removes_a_standing_preference_for_the_first_letter():
    # the judge's raw scores always favour "A" by 2 nats, and the content adds +1 to the better answer (Paris)
    class Biased(FakeBackend):
        def ask_batches(self, messages, options, seeds):
            for i, m in enumerate(messages):
                good_a, good_b = "A]\nParis" in m, "B]\nParis" in m
                yield [i], [Reply(scores={"A": -1.0 + good_a, "B": -3.0 + good_b, "C": -2.5})]

    pairs = _two_pairs()[:1]
    raw, _ = judge_pairs(pairs, Biased({}), PAIRWISE, RUN)
    assert [j.verdict for j in raw] == ["a", "a"]  # "always A": under LIMA's rule, a tie
    calibrated, stats = judge_pairs(pairs, Biased({}), PAIRWISE, JudgeRun("j", "f0", calibrate=True))
    assert [j.verdict for j in calibrated] == ["a", "b"] and stats.calls == 2 + 3  # + the 3 content-free inputs
    assert calibrated[0].meta["calibrated"].startswith("A=1.0000")


def test_planted_injections_are_seeded_rotate_attacks_and_leave_the_candidate_alone():
    from lessismore.judge.injection import ATTACKS, plant

    prompts = [_prompt(f"Question {i}?") for i in range(8)]
    responses = [_response(p, m, f"{m} {i}") for i, p in enumerate(prompts) for m in ("finetuned", "base")]
    pairs = build_pairs(prompts, responses, "finetuned", ["base"])[0]
    planted = plant(pairs, 6, seed=3)
    assert planted == plant(list(reversed(pairs)), 6, seed=3) and len(planted) == 6
    assert [name for *_, name in planted] == [a for a, _ in ATTACKS] + [ATTACKS[0][0]]
    for clean, twin, name in planted:
        assert twin.candidate == clean.candidate and twin.baseline.text.startswith(clean.baseline.text)
        assert twin.baseline.text != clean.baseline.text and twin.baseline.id != clean.baseline.id
        assert twin.baseline.meta["injection"] == name and twin.baseline.model == clean.baseline.model
    assert {c.prompt.id for c, _, _ in plant(pairs, 6, seed=4)} != {c.prompt.id for c, _, _ in planted}


def test_a_forged_fence_in_an_answer_cannot_close_the_judge_s_fence():
    from lessismore.judge.injection import ATTACKS

    forged = dict(ATTACKS)["forged_fence"]
    message = PAIRWISE.render(prompt="q", answer_a="fine", answer_b="mine" + forged)
    assert message.count("[END ANSWER B]") == 1 and message.count("[BEGIN ANSWER B]") == 1
