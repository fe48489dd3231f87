"""The warehouse: relations (SQL, not rows), the DuckDB resource, partition writes and the IO manager."""
