"""The `mo` command line."""
