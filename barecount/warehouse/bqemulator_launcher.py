"""Starts the BigQuery emulator (PyPI `bqemulator`) inside its own environment.

Run by that environment's Python (`make bqemulator` builds it), not BareCount's: the emulator needs DuckDB 1.5,
the product DuckDB 2.0. So this file imports only the standard library and the emulator's packages. It
prepares what the emulator cannot do by itself here: the spatial extension comes from a wheel (nothing can
be downloaded), format extensions stay off, and the upload route also takes `*/*`, the content type
`google-cloud-bigquery` sends with a load job's file.

    python bqemulator_launcher.py --rest-port P --grpc-port Q --project NAME [other `bqemulator start` options]
"""

import os
import sys


def main(arguments: list[str]) -> None:
    os.environ.setdefault("BQEMU_ENABLE_FORMAT_EXTENSIONS", "false")
    import duckdb_extensions
    from bqemulator.api.routes import upload
    from bqemulator.cli import main as emulator

    duckdb_extensions.import_extension("spatial")
    upload._PERMITTED_MEDIA_CONTENT_TYPES = (*upload._PERMITTED_MEDIA_CONTENT_TYPES, "*/*")
    emulator(["start", *arguments])


if __name__ == "__main__":
    main(sys.argv[1:])
