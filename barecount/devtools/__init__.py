"""Sample data, scenarios and the benchmark: used by the CLI and the tests, never by a run."""
