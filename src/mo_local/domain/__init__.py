"""Pure domain model: goals, projects, events and their rules. No I/O, no crypto."""
