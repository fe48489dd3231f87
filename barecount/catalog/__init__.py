"""The project's files, loaded and cross-checked together: every error at once, with file, line and field."""
