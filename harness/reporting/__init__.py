"""What people read, and what it is read from: a run directory's counts (``run_counts``) and selector comparison,
the terminal table, progress, figures (PNG), the HTML report and run comparisons."""
