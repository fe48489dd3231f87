"""Connectors turn a stream's source into a SQL relation the warehouse can read."""
