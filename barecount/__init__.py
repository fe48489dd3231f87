"""BareCount: governed data pipelines on Dagster."""
