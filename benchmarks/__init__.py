"""Benchmarks of the harness's own speed: ``python -m benchmarks`` runs the suite.

``suite`` holds the registry of figures, the table and the JSON output; each other module measures figures
(engine: overhead and prefix sharing; tuning: engine throughput and start-up on CPU; verification and sandbox;
analysis; store) and can also be run alone as ``python -m benchmarks.<module>``."""
