"""dbt-duckdb plugin: ``embed()`` and every ``embed_*`` macro in dbt models.

In ``profiles.yml``::

    my_project:
      target: dev
      outputs:
        dev:
          type: duckdb
          path: warehouse.duckdb        # or ':memory:'
          threads: 4
          plugins:
            - module: embed_sql.dbt
              config:                   # all optional, as for embed_sql.register
                model: all-MiniLM-L6-v2
                models: {q8: "all-MiniLM-L6-v2:int8"}
                image_model: efficientnet-lite0   # embed_image(blob_or_path)
                cache: .embed_cache.sqlite

dbt-duckdb opens one DuckDB database per run and hands every model a cursor of it (one per
thread and node): ``configure_connection`` registers the database once, and
``configure_cursor`` registers each cursor (cheap: it shares the database's models and
indexes). Python models get a cursor wrapper; ``embed_sql.register``, ``create_index`` and
friends accept it as it is.

Indexes live in the dbt process: save one with ``embed_create_index(..., path := 'x.index')``
in a model, and a later ``dbt run`` opens it with ``embed_load_index``.

This module imports dbt-duckdb; only dbt imports it.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from embed_sql.exceptions import InvalidParameterError
from embed_sql.udfs.duckdb import register

__all__ = ["Plugin"]

_OPTIONS = ("model", "models", "cache", "macros", "image_model")


class Plugin(BasePlugin):
    """Registers embed_sql on dbt-duckdb's connection and on every cursor it hands out."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        """Keep the ``config:`` options for :func:`embed_sql.register`; refuse unknown ones."""
        if plugin_config is getattr(self.creds, "settings", None):
            plugin_config = {}  # no config: given: dbt-duckdb passes its DuckDB settings instead
        unknown = sorted(set(plugin_config) - set(_OPTIONS))
        if unknown:
            msg = (
                f"embed_sql.dbt plugin: unknown config option(s) {unknown}; allowed: "
                f"{', '.join(_OPTIONS)} (as for embed_sql.register)"
            )
            raise InvalidParameterError(msg)
        self.options = {k: plugin_config[k] for k in _OPTIONS if plugin_config.get(k) is not None}

    def configure_connection(self, conn: Any) -> None:
        """Register the database: functions, models, macros."""
        register(conn, **self.options)

    def configure_cursor(self, cursor: Any) -> None:
        """Register a model's cursor (its macros, for read-only or TEMP-only setups)."""
        register(cursor, macros=self.options.get("macros", "database"))
