"""Dagster-free services that own the governed work: land a stream, build a model or KPI, judge its gates,
publish, and decide what is already done. They take a warehouse connection and plain values; a run's
decisions stay in its `RunScope`, and what must outlive the run goes to the evidence tables."""
