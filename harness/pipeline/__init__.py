"""The steps of a run, each reading and writing a run directory: prepare, sample, verify, score, import,
analyse, the adaptive pilot, and ``run()``, the whole pipeline as one call."""
