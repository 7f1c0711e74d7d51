"""The ``math`` verifier on MATH-500: throughput with answer-level caching against calling math-verify once
per sample, and the correctness checks (self-verification, negative control, nasty inputs).

Synthetic samples follow a repeated-sampling answer distribution: per problem, a pool of 8 answers (the
reference in two spellings, 6 wrong answers: other problems' answers and, for integer references, nearby
integers) drawn with Zipf weights, plus a tail of one-off answers and samples with no answer. Each sample
is the problem's real MATH solution with its boxed answer replaced, so texts have realistic length and
LaTeX. Run::

    python -m benchmarks.verification --data ../shared/data/math500_test.jsonl            # throughput
    python -m benchmarks.verification --data ../shared/data/math500_test.jsonl --checks   # checks
    python -m benchmarks.verification --nasty                                             # nasty inputs
    python -m benchmarks.verification --pathological       # a batch of 32 answers, 12 of them pathological
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.core.jsonl import read_jsonl
from verifiers.math import MathVerifier, extract_answer, normalize_answer

POOL_SIZE = 8
ZIPF_EXPONENT = 1.2
TAIL_FRACTION = 0.04  # one-off answers (random integers)
NO_ANSWER_FRACTION = 0.02  # completions cut before their answer
_LAST_BOX = re.compile(r"\\boxed\{")
# Not an integer, so that it reaches the worker process (integers are compared without it).
_WARM_UP = ({"answer": "\\frac{1}{2}"}, ["\\boxed{0.5}"])


def _answer_pool(record: dict[str, Any], records: Sequence[dict[str, Any]], rng: random.Random) -> list[str]:
    gold = record["answer"]
    pool = [gold, f" {gold} "]  # a second spelling that normalises to the first
    if re.fullmatch(r"-?\d+", gold.strip()):
        value = int(gold)
        pool += [str(value + 1), str(value - 1), str(2 * value)]
    while len(pool) < POOL_SIZE:
        other = rng.choice(records)["answer"]
        if other != gold:
            pool.append(other)
    # The reference is not always the most popular answer: shuffle it into the top three.
    head = pool[:3]
    rng.shuffle(head)
    return head + pool[3:]


def _with_answer(solution: str, answer: str | None) -> str:
    """The solution with its last boxed answer replaced by ``answer`` (None: cut before the box)."""
    start = [m.start() for m in _LAST_BOX.finditer(solution)][-1]
    depth, end = 0, start
    for end in range(start + len("\\boxed"), len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[end], 0)
        if depth == 0:
            break
    if answer is None:
        return solution[:start]
    return solution[:start] + "\\boxed{" + answer + "}" + solution[end + 1 :]


def synthetic_samples(
    records: Sequence[dict[str, Any]], n_problems: int, samples_per_problem: int, seed: int = 0
) -> list[tuple[dict[str, str], list[str]]]:
    """(reference, completions) for the first ``n_problems`` records."""
    rng = random.Random(seed)
    weights = [1 / rank**ZIPF_EXPONENT for rank in range(1, POOL_SIZE + 1)]
    problems = []
    for record in records[:n_problems]:
        pool = _answer_pool(record, records, rng)
        completions = []
        for _ in range(samples_per_problem):
            roll = rng.random()
            if roll < NO_ANSWER_FRACTION:
                answer = None
            elif roll < NO_ANSWER_FRACTION + TAIL_FRACTION:
                answer = str(rng.randrange(10**6))
            else:
                answer = rng.choices(pool, weights)[0]
            completions.append(_with_answer(record["solution"], answer))
        problems.append(({"answer": record["answer"]}, completions))
    return problems


def _time_cached(problems: list[tuple[dict[str, str], list[str]]]) -> tuple[float, list[list[bool]]]:
    verifier = MathVerifier()
    verifier.verify(*_WARM_UP)  # worker start-up is reported separately
    start = time.perf_counter()
    correct = [[v.correct for v in verifier.verify(reference, completions)] for reference, completions in problems]
    seconds = time.perf_counter() - start
    verifier.close()
    return seconds, correct


def _time_per_sample(problems: list[tuple[dict[str, str], list[str]]]) -> tuple[float, list[list[bool]]]:
    """math-verify as its README shows it: parse each completion, verify it against the parsed reference
    (parsed once per problem, which favours this baseline)."""
    from math_verify import parse, verify

    start = time.perf_counter()
    correct = []
    for reference, completions in problems:
        gold = parse("\\boxed{" + reference["answer"] + "}")
        correct.append([bool(verify(gold, parse(text))) for text in completions])
    return time.perf_counter() - start, correct


def _answer_key(completion: str) -> str | None:
    answer = extract_answer(completion)
    return None if answer is None else normalize_answer(answer)


def _worker_startup_seconds() -> float:
    verifier = MathVerifier()
    start = time.perf_counter()
    verifier.verify(*_WARM_UP)
    seconds = time.perf_counter() - start
    verifier.close()
    return seconds


def run_verification_benchmark(
    data: str | Path,
    n_problems: int = 100,
    samples_per_problem: int = 1000,
    baseline_samples_per_problem: int = 100,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Samples per second of the ``math`` verifier and of math-verify once per sample, medians of ``repeats``.

    The per-sample baseline is timed on the first ``baseline_samples_per_problem`` samples of each problem
    (it is slow); both rates are per sample, so their ratio is the speed-up. ``agreement`` is the fraction of
    those samples that both judge alike.
    """
    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # the baseline logs every failed parse
    records = read_jsonl(data)
    if not 0 < n_problems <= len(records):
        raise ValueError(f"n_problems must be in 1..{len(records)}, got {n_problems}")
    if not 0 < baseline_samples_per_problem <= samples_per_problem:
        raise ValueError("baseline_samples_per_problem must be in 1..samples_per_problem")
    problems = synthetic_samples(records, n_problems, samples_per_problem, seed)
    subset = [(reference, completions[:baseline_samples_per_problem]) for reference, completions in problems]
    n_samples = n_problems * samples_per_problem
    n_baseline = n_problems * baseline_samples_per_problem

    cached_runs, baseline_runs = [], []
    for _ in range(repeats):
        seconds, cached_correct = _time_cached(problems)
        cached_runs.append(seconds)
        seconds, baseline_correct = _time_per_sample(subset)
        baseline_runs.append(seconds)
    agree = sum(
        a == b
        for cached, baseline in zip(cached_correct, baseline_correct)
        for a, b in zip(cached[:baseline_samples_per_problem], baseline)
    )
    distinct = [len({_answer_key(text) for text in completions}) for _, completions in problems]
    cached_rate = n_samples / statistics.median(cached_runs)
    baseline_rate = n_baseline / statistics.median(baseline_runs)
    return {
        "n_problems": n_problems,
        "samples_per_problem": samples_per_problem,
        "distinct_answers_per_problem_mean": statistics.mean(distinct),
        "accuracy": sum(map(sum, cached_correct)) / n_samples,
        "cached": {"samples": n_samples, "seconds": cached_runs, "samples_per_s": cached_rate},
        "per_sample_math_verify": {"samples": n_baseline, "seconds": baseline_runs, "samples_per_s": baseline_rate},
        "speedup": cached_rate / baseline_rate,
        "agreement": agree / n_baseline,
        "worker_startup_s": _worker_startup_seconds(),
        "repeats": repeats,
        "machine": {"cpus": os.cpu_count(), "load_average_1m": os.getloadavg()[0]},
        "versions": {"math-verify": metadata.version("math-verify"), "sympy": metadata.version("sympy")},
    }


def derangement(n: int, seed: int) -> list[int]:
    """A random permutation of ``range(n)`` that moves every element."""
    rng = random.Random(seed)
    order = list(range(n))
    while True:
        rng.shuffle(order)
        if all(order[i] != i for i in range(n)):
            return order


def math500_checks(data: str | Path, seeds: Sequence[int] = (0, 1, 2, 3, 4)) -> dict[str, Any]:
    """Each record's ``answer`` against its own ``solution`` (self-verification), and against the solution
    of another problem (negative control, one derangement per seed)."""
    records = read_jsonl(data)
    verifier = MathVerifier()

    def judged(gold_index: int, solution_index: int) -> bool:
        reference = {"answer": records[gold_index]["answer"]}
        return verifier.verify(reference, [records[solution_index]["solution"]])[0].correct

    failures = [records[i]["unique_id"] for i in range(len(records)) if not judged(i, i)]
    negative = {}
    for seed in seeds:
        hits = [
            (records[i]["answer"], records[j]["answer"])
            for i, j in enumerate(derangement(len(records), seed))
            if judged(i, j)
        ]
        negative[seed] = {"rate": len(hits) / len(records), "hits": hits}
    verifier.close()
    return {
        "records": len(records),
        "self_verified": len(records) - len(failures),
        "self_failures": failures,
        "negative_control": negative,
    }


NASTY_ANSWERS = {
    "long number (1e6 digits)": "9" * 1_000_000,
    "nested frac 10,000 deep": "\\frac{" * 10_000 + "1" + "}{2}" * 10_000,
    "nested frac 100 deep": "\\frac{" * 100 + "1" + "}{2}" * 100,
    "invalid latex": r"\frac{1}{\sqrt{}} \right) \begin{pmatrix} ^_^",
    "unclosed box": r"\frac{1}{\sqrt{x",
    "unbalanced braces": "}}}{{{" * 50,
    "binary garbage": bytes(range(256)).decode("latin-1") * 20,
    "huge power": "10^{10^{10}}",
    "huge product": "(10^{10^{8}}+1)^{2}",
    "huge factorial": "(10^{10})!",
    "empty": "",
}


# Answers that are slow to judge or absurd: huge powers and factorials, deep nesting, very long expressions.
PATHOLOGICAL_ANSWERS = {
    "power tower": "10^{10^{10}}",
    "power of a power": "9^{9^{9}}",
    "tower of twos": "2^{2^{2^{2^{2^{2}}}}}",
    "huge product": "(10^{10^{8}}+1)^{2}",
    "ten-million power": "7^{10000000}",
    "huge factorial": "(10^{10})!",
    "factorial of a factorial": "(1000!)!",
    "huge binomial": "\\binom{10^{9}}{10^{5}}",
    "parentheses 300 deep": "(" * 300 + "1" + ")" * 300,
    "square roots 100 deep": "\\sqrt{" * 100 + "2" + "}" * 100,
    "product of 119 factors": "".join(f"(x+{i})" for i in range(1, 120)),
    "power of a sum of four": "(x+y+z+1)^{60}",
}
ORDINARY_ANSWERS = (
    "\\frac{3}{4}",
    "0.75",
    "\\frac{6}{8}",
    "3/4",
    "\\frac{1}{2}",
    "1",
    "2",
    "-\\frac{3}{4}",
    "\\sqrt{2}",
    "\\frac{\\sqrt{3}}{2}",
    "x+1",
    "\\pi",
    "(1,2)",
    "[0,1)",
    "75\\%",
    "\\text{yes}",
    "2^{-1}",
    "12",
    "0",
    "\\infty",
)


def pathological_batch_timing(timeout: float = 5.0, workers: int = 2) -> dict[str, Any]:
    """Wall seconds to judge one call of 32 distinct answers against ``\\frac{3}{4}``: 20 ordinary ones and
    the 12 ``PATHOLOGICAL_ANSWERS`` (the issue's batch took 34 s when each used its whole 5 s budget in turn),
    with every worker started beforehand, and each answer's verdict."""
    answers = list(ORDINARY_ANSWERS) + list(PATHOLOGICAL_ANSWERS.values())
    verifier = MathVerifier(timeout=timeout, workers=workers)
    for slot in range(workers):  # start-up is not what is timed
        from verifiers.math_worker import SharedWorker

        SharedWorker.for_limit(verifier.memory_limit_mb, slot).live()
    start = time.perf_counter()
    verdicts = verifier.verify({"answer": "\\frac{3}{4}"}, [f"\\boxed{{{answer}}}" for answer in answers])
    seconds = time.perf_counter() - start
    verifier.close()
    names = [f"ordinary {answer}" for answer in ORDINARY_ANSWERS] + list(PATHOLOGICAL_ANSWERS)
    return {
        "answers": len(answers),
        "pathological": len(PATHOLOGICAL_ANSWERS),
        "seconds": seconds,
        "target_s": 10.0,
        "timeout_cpu_s": timeout,
        "workers": workers,
        "verdicts": {name: {"reason": v.reason, "detail": v.detail} for name, v in zip(names, verdicts)},
        "machine": {"cpus": os.cpu_count(), "load_average_1m": os.getloadavg()[0]},
    }


def nasty_input_timings(timeout: float = 5.0, max_answer_chars: int = 10**7) -> dict[str, dict[str, Any]]:
    """Reason, detail and wall seconds of each nasty answer, boxed, against the reference ``42``.

    The default ``max_answer_chars`` lets every input reach math-verify (the verifier's own default, 1000,
    refuses the long ones before parsing)."""
    verifier = MathVerifier(timeout=timeout, max_answer_chars=max_answer_chars)
    verifier.verify(*_WARM_UP)
    timings = {}
    for name, text in NASTY_ANSWERS.items():
        start = time.perf_counter()
        verdict = verifier.verify({"answer": "42"}, [f"\\boxed{{{text}}}"])[0]
        timings[name] = {"reason": verdict.reason, "detail": verdict.detail, "seconds": time.perf_counter() - start}
    verifier.close()
    return timings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/math500_test.jsonl", help="MATH-500 JSONL file")
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--samples", type=int, default=1000, help="samples per problem")
    parser.add_argument("--baseline-samples", type=int, default=100, help="samples per problem for the baseline")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    instead = parser.add_mutually_exclusive_group()
    instead.add_argument("--checks", action="store_true", help="self-verification and negative control instead")
    instead.add_argument("--nasty", action="store_true", help="nasty-input verdicts and timings instead")
    instead.add_argument("--pathological", action="store_true", help="time a batch with 12 pathological answers")
    parser.add_argument("--timeout", type=float, default=5.0, help="--pathological: CPU seconds per answer")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.pathological:
        figures = pathological_batch_timing(timeout=args.timeout)
        if args.json:
            print(json.dumps(figures, indent=2))
            return
        for name, verdict in figures["verdicts"].items():
            print(f"  {name:28s} {verdict['reason']:12s} {verdict['detail'][:70]}")
        print(
            f"{figures['answers']} distinct answers, {figures['pathological']} pathological: "
            f"{figures['seconds']:.1f} s (target < {figures['target_s']:.0f} s; {figures['workers']} workers, "
            f"{figures['timeout_cpu_s']:g} s CPU timeout; {figures['machine']['cpus']} CPUs, "
            f"load average {figures['machine']['load_average_1m']:.1f})"
        )
        return
    if args.checks or args.nasty:
        figures = math500_checks(args.data) if args.checks else nasty_input_timings()
        print(json.dumps(figures, indent=2, ensure_ascii=True))
        return
    figures = run_verification_benchmark(
        args.data, args.problems, args.samples, args.baseline_samples, args.repeats, args.seed
    )
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    cached, baseline = figures["cached"], figures["per_sample_math_verify"]
    print(f"{figures['n_problems']} MATH-500 problems x {figures['samples_per_problem']} synthetic samples")
    print(f"  distinct answers/problem  : {figures['distinct_answers_per_problem_mean']:10.1f} (mean)")
    print(
        f"  with answer-level caching : {cached['samples_per_s']:10.0f} samples/s "
        f"({cached['samples']} samples, median of {figures['repeats']})"
    )
    print(
        f"  math-verify per sample    : {baseline['samples_per_s']:10.0f} samples/s "
        f"({baseline['samples']} samples, median of {figures['repeats']})"
    )
    print(f"  speed-up                  : {figures['speedup']:10.1f}x")
    print(f"  verdict agreement         : {figures['agreement']:10.4f}")
    print(f"  worker start-up           : {figures['worker_startup_s']:10.2f} s (once per process)")
    print(
        f"  machine                   : {figures['machine']['cpus']} CPUs, "
        f"load average {figures['machine']['load_average_1m']:.1f}"
    )


if __name__ == "__main__":
    main()


def default_data_path() -> Path:
    """MATH-500 in the shared data folder ($TTC_SHARED_DATA, else ../shared/data beside the checkout)."""
    candidates = [os.environ.get("TTC_SHARED_DATA"), Path.cwd().parent / "shared" / "data", "/work/shared/data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "math500_test.jsonl").is_file():
            return Path(candidate) / "math500_test.jsonl"
    raise FileNotFoundError("math500_test.jsonl not found: set TTC_SHARED_DATA to the shared data folder")


def run_figure(quick: bool):
    """Figure 4 (math) of the benchmark suite: samples/s with and without answer-level caching."""
    from benchmarks.suite import FigureResult, Row

    shape = {"n_problems": 5, "samples_per_problem": 100, "baseline_samples_per_problem": 10, "repeats": 1}
    if not quick:
        shape = {"n_problems": 100, "samples_per_problem": 1000, "baseline_samples_per_problem": 30, "repeats": 3}
    figures = run_verification_benchmark(default_data_path(), **shape)
    cached, baseline = figures["cached"], figures["per_sample_math_verify"]
    rows = [
        Row(
            "4 math verification",
            f"samples/s with answer caching ({figures['n_problems']} MATH-500 x {figures['samples_per_problem']})",
            cached["samples_per_s"],
            "samples/s",
            detail=f"{figures['speedup']:.0f}x math-verify per sample ({baseline['samples_per_s']:.0f}/s); "
            f"agreement {figures['agreement']:.4f}; median of {figures['repeats']}",
        ),
        Row(
            "4 math verification",
            "samples/s, math-verify once per sample (no caching)",
            baseline["samples_per_s"],
            "samples/s",
            detail=f"{baseline['samples']} samples; worker start-up {figures['worker_startup_s']:.2f} s",
        ),
    ]
    return FigureResult(rows, figures)
