"""The core: canonical models, the DuckDB store, ingestion and the CLI."""
