"""The Python API on a counts file or a run directory: per-problem counts, pass@k, the law, a forecast, a budget.

    python examples/api.py ../shared/data/monkey_business_pythia_math_10k_counts.jsonl          # seconds
    python examples/api.py ../shared/data/monkey_business_pythia_math_10k_counts.jsonl --group "Pythia 12B"
    python examples/api.py results/<run>      # a run directory: also the selectors' accuracy@k

A run directory comes from ``ttc run`` or from Python (minutes on a CPU; nothing new on a second call)::

    from harness import run
    result = run("gsm8k", data="../shared/data/gsm8k_test.jsonl", problems=20, samples=32)
    print(result.run_dir, result.summary["pass_at_1"])
"""

from __future__ import annotations

import argparse

import pandas as pd

from harness import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a run directory or a counts JSONL file")
    parser.add_argument("--group-by", default="model", help="field that splits a counts file (default: model)")
    parser.add_argument("--group", default="Pythia 2.8B", help="the group to analyse (default: Pythia 2.8B)")
    parser.add_argument("--k", type=int, default=None, help="forecast coverage at k (default: 10 x the samples)")
    args = parser.parse_args()
    pd.set_option("display.width", 120)

    loaded = load_run(args.source)
    print(loaded)
    if not loaded.is_run_directory and args.group_by in loaded.counts:
        # one row per group: pass@1 and coverage at the largest k, measured (no law needed)
        groups = loaded.groups(args.group_by)
        rows = {name: group.pass_at_k().coverage.iloc[[0, -1]].tolist() for name, group in groups.items()}
        print(pd.DataFrame.from_dict(rows, orient="index", columns=["pass@1", "pass@n"]).sort_values("pass@1"))
        loaded = loaded.group(args.group_by, args.group)
        print(f"\n{loaded}")

    counts = loaded.counts  # pandas: problem_id, num_samples, num_correct and the problems' metadata
    print(counts.head())
    print(f"solved at least once: {(counts.num_correct > 0).mean():.3f}")

    print(loaded.pass_at_k())  # k = 1, 2, 4, ..., n with 95% intervals over problems
    law = loaded.law  # log(coverage) = a * k^b, as the analysis fitted it
    print(
        f"law: log(coverage) = {law.a_:.3f} * k^{law.b_:.3f} (R^2 {law.r2_:.3f}); at k = 1000: {law.predict(1000):.3f}"
    )
    k = args.k or 10 * int(counts.num_samples.min())
    forecast = loaded.forecast(k)  # auto method, 90% interval
    interval = f"[{forecast.low:.3f}, {forecast.high:.3f}]"
    print(f"forecast: coverage@{k:,} = {forecast.coverage:.3f} {interval} ({forecast.method}, 90% interval)")
    plan = loaded.budget(0.8)  # what `ttc budget --target 0.8` computes: the k whose forecast reaches 80%
    reached = f"not reached by k = {plan.k_limit:,}" if plan.k is None else f"k = {plan.k:,}"
    print(f"budget: coverage 0.8 at {reached} (interval's ends: {plan.k_optimistic} .. {plan.k_conservative})")

    if loaded.is_run_directory:  # selectors need the samples: majority vote, reward-model best-of-k, ...
        selectors = loaded.selectors()
        print(selectors.pivot(index="k", columns="selector", values="accuracy").round(3))


if __name__ == "__main__":
    main()
