"""Pure SQL builders: quoting, lineage columns, binding of declared inputs, survivorship, PII masking, the
calendar tables, and the hashes that name a piece of work. No connection and no Dagster."""
