"""The bottom layer, which every package may import and which imports nothing of ttc: the error hierarchy
(``errors``), JSON and JSONL reading with errors that name the file and line (``jsonl``), ``module:Class``
lookup (``classes``), and the plain records that several packages share (``records``: ``Problem``,
``SamplingSettings``)."""
