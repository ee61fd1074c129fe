"""Worked examples of search spaces defined in config (see the README, "Your own search space")."""
