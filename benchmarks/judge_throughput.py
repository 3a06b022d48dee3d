"""Benchmark: an OpenAI-compatible judge on the same pairs, sequential against concurrent, then with a warm cache.

judge.protocol.judge_pairs judges N synthetic pairs in both orders (2N calls) through judge/openai.py:
1. against a local OpenAI-compatible server (tests/servers.py's FaultServer) whose every reply takes a fixed
   latency (default 300 ms, a hosted API's): a hosted judge is latency-bound, not compute-bound. Once at
   concurrency 1 (the anchor) and once at --concurrency, each with an empty verdict cache; then once more with the
   cache file the concurrent run wrote, reopened from disk (warm: it must make 0 calls).
2. the same two rates against `transformers serve` on a tiny random Llama saved to a temp dir, where the 2 CPU
   cores bound them (--skip-serve leaves it out).
Last line: `judge_throughput: concurrent/sequential = X.XX, warm-cache calls = N` (goal >= 4 and 0; the ratio is
the latency server's).

    python benchmarks/judge_throughput.py [--pairs 40] [--concurrency 8] [--latency-ms 300] [--serve-pairs 20]
                                          [--serve-threads 1] [--skip-serve]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def synthetic_pairs(n: int) -> list:
    """`n` distinct prompts, each with a candidate and a baseline answer (short: the tiny model's context is 1,024)."""
    from lessismore.judge.protocol import Pair
    from lessismore.records import Origin, Prompt, Response

    pairs = []
    for i in range(n):
        prompt = Prompt(
            f"Question {i}: how do I keep basil alive indoors?", "test", Origin("bench", "synthetic", str(i))
        )
        cand, base = (
            Response(prompt.id, model, "bench", f"Answer {i} by {model}: {text}", {"seed": i})
            for model, text in (
                ("candidate", "water it when the soil is dry, give it sun."),
                ("baseline", "buy more."),
            )
        )
        pairs.append(Pair(prompt, cand, base))
    return pairs


def timed_runs(url: str, model: str, pairs: list, concurrency: int, cache_dir: Path, **judge_kw) -> dict:
    """pairs/s at concurrency 1 and at `concurrency` (empty caches), then the warm-cache run's calls."""
    from lessismore.judge import load_template
    from lessismore.judge.cache import KeyedCache
    from lessismore.judge.openai import OpenAIJudge
    from lessismore.judge.protocol import JudgeRun, judge_pairs

    template, run = load_template("pairwise"), JudgeRun("bench-judge", fingerprint="bench")
    out = {}
    for name, workers in (("sequential", 1), ("concurrent", concurrency)):
        judge = OpenAIJudge(url, model, mode="generate", concurrency=workers, **judge_kw)
        with KeyedCache(cache_dir / f"{name}.jsonl") as cache:
            judgments, stats = judge_pairs(pairs, judge, template, run, cache)
        out[name] = {
            "pairs_per_s": len(pairs) / stats.seconds,
            "calls": stats.calls,
            "seconds": stats.seconds,
            "valid": sum(j.verdict != "invalid" for j in judgments),
        }
        print(
            f"{name:>11} (concurrency {workers}): {len(pairs)} pairs, {stats.calls} calls in {stats.seconds:.1f} s "
            f"= {out[name]['pairs_per_s']:.2f} pairs/s ({out[name]['valid']} readable verdicts)"
        )
    judge = OpenAIJudge(url, model, mode="generate", concurrency=concurrency, **judge_kw)
    with KeyedCache(cache_dir / "concurrent.jsonl") as cache:  # reopened from disk: what a re-run sees
        _, stats = judge_pairs(pairs, judge, template, run, cache)
    out["warm_calls"] = stats.calls
    print(
        f"{'warm cache':>11} (concurrency {concurrency}): {stats.cached} items from the cache, {stats.calls} calls "
        f"in {stats.seconds:.3f} s"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=300.0, help="every reply of the local server takes this")
    parser.add_argument("--serve-pairs", type=int, default=20, help="pairs judged by `transformers serve`")
    parser.add_argument("--serve-threads", type=int, default=1, help="torch CPU threads of `transformers serve`")
    parser.add_argument("--skip-serve", action="store_true", help="leave out the `transformers serve` part")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))  # tests/servers.py: the same servers the integration tests use

    from tests.servers import FaultServer, serve_transformers

    # ---------------------------------------------------------------- a hosted API's latency, on 127.0.0.1
    print(
        f"local OpenAI-compatible server, every reply after {args.latency_ms:.0f} ms; "
        f"{args.pairs} pairs x 2 orders = {2 * args.pairs} calls"
    )
    srv = FaultServer(reply=lambda message: "ABC"[len(message) % 3], latency_s=args.latency_ms / 1000).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pairs = synthetic_pairs(args.pairs)
            latency = timed_runs(srv.url, "bench-judge", pairs, args.concurrency, Path(tmp), timeout_s=30)
            made = latency["sequential"]["calls"] + latency["concurrent"]["calls"]
            print(f"server saw {len(srv.bodies)} requests in all; the warm run added none: {len(srv.bodies) == made}")
    finally:
        srv.stop()
    ratio, warm = latency["concurrent"]["pairs_per_s"] / latency["sequential"]["pairs_per_s"], latency["warm_calls"]
    print(f"latency server: concurrent/sequential = {ratio:.2f} (goal >= 4)")

    # ---------------------------------------------------------------- transformers serve, bound by 2 CPU cores
    if not args.skip_serve:
        from lessismore.config import load_params
        from lessismore.train.base_model import build_tiny_random

        with tempfile.TemporaryDirectory() as tmp:
            model_dir = build_tiny_random(Path(tmp) / "tiny", load_params(profile="profiles/tiny.yaml").model.tiny, 0)
            print(
                f"transformers serve on a tiny random Llama ({model_dir}, {args.serve_threads} torch thread(s)); "
                f"{args.serve_pairs} pairs x 2 orders"
            )
            with serve_transformers(model_dir, Path(tmp) / "serve.log", threads=args.serve_threads) as url:
                served = timed_runs(
                    url,
                    str(model_dir),
                    synthetic_pairs(args.serve_pairs),
                    args.concurrency,
                    Path(tmp),
                    timeout_s=300,
                    max_new_tokens=8,
                    context_tokens=1024,
                )
            serve_ratio = served["concurrent"]["pairs_per_s"] / served["sequential"]["pairs_per_s"]
            print(f"transformers serve: concurrent/sequential = {serve_ratio:.2f} (CPU-bound)")
            warm += served["warm_calls"]
    print(f"judge_throughput: concurrent/sequential = {ratio:.2f}, warm-cache calls = {warm}")


if __name__ == "__main__":
    main()
