"""The `barecount` command line."""
