"""Where things are and how they are set: project paths, profiles and tenants, the Dagster instance and its
storage."""
