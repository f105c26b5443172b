"""Client side of sync: transport and the push/pull/rebase engine."""
