"""Run bookkeeping: metric sinks (W&B, CSV), history journal, state, plots, comparison."""
