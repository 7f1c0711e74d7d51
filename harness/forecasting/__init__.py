"""Coverage beyond the sampled k: scaling laws, forecasting methods with intervals, backtests of them, and the
sample budget (samples, tokens, FLOPs, time, money) a coverage target needs."""
