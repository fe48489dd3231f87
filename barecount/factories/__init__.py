"""Builders from parsed spec models to Dagster objects: one named builder per kind of object."""
