"""``python -m harness.bench``: run the benchmark suite (see ``harness.bench.suite``)."""

from harness.bench.suite import main

if __name__ == "__main__":
    main()
