"""Host adapters (DuckDB, Polars): the only modules that import a host library."""
