"""What people read: the terminal table, progress, figures (PNG), the HTML report and run comparisons."""
