"""The Dagster adapter: the project's files as asset and check specs, one multi-asset step per layer and
partitioning kind, the resources, sensors and jobs, and `build_definitions`. The governed work itself is
done by `barecount.pipeline`."""
