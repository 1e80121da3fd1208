"""Storage: tables, engine, migrations and the queries the pipeline runs."""
