"""Use cases: commands, handlers, queries and the goal-achievement process."""
