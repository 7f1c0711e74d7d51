"""``python -m benchmarks``: run the benchmark suite (see ``benchmarks.suite``)."""

from benchmarks.suite import main

if __name__ == "__main__":
    main()
