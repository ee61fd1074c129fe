"""How an architecture is found: population, selection, mutation, controller, strategies, loop."""
