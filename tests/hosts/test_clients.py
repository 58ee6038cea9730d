"""embed_sql inside the clients data engineers run: SQLAlchemy pools, dbt-duckdb, ibis."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest

import embed_sql
from embed_sql.exceptions import InvalidParameterError
from embed_sql.udfs.duckdb import create_index

sqlalchemy = pytest.importorskip("sqlalchemy")
pytest.importorskip("duckdb_engine")


def _in_threads(work: object, n: int = 4) -> list[object]:
    out: list[object] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            out[i] = work()  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


def test_a_pooled_engine_registers_every_connection_across_threads(
    tiny_source: Path, tmp_path: Path
) -> None:
    engine = sqlalchemy.create_engine(f"duckdb:///{tmp_path / 'pool.duckdb'}", pool_size=4)
    try:
        embed_sql.register(engine, model=str(tiny_source))
        embed_sql.register(engine, model=str(tiny_source))  # again: one listener, not two
        with engine.connect() as conn:  # SQLAlchemy opens a transaction: commit the table
            conn.exec_driver_sql(
                "CREATE TABLE docs AS SELECT range AS id, embed('doc ' || range) AS v "
                "FROM range(20)"
            )
            with pytest.raises(sqlalchemy.exc.DBAPIError, match=r"not committed.*COMMIT first"):
                conn.exec_driver_sql("SELECT embed_create_index('docs_index', 'docs')")
        with engine.connect() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE docs AS SELECT range AS id, embed('doc ' || range) AS v "
                "FROM range(20)"
            )
            conn.commit()
            conn.exec_driver_sql("SELECT embed_create_index('docs_index', 'docs')").fetchall()

        def query() -> list[tuple[object, ...]]:
            with engine.connect() as conn:  # each thread: its own pooled connection
                sql = "FROM embed_knn_join('docs', 'docs_index', k := 3)"
                return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]

        results = _in_threads(query)
        assert all(r == results[0] for r in results)
        assert len(results[0]) == 60
    finally:
        engine.dispose()


def test_an_in_memory_engine_registers_each_threads_database(tiny_source: Path) -> None:
    # duckdb:///:memory: gives every thread its own database (SingletonThreadPool): the
    # engine's connect event registers each one as it opens
    engine = sqlalchemy.create_engine("duckdb:///:memory:")
    try:
        embed_sql.register(engine, model=str(tiny_source))

        def dim() -> int:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql("SELECT len(embed('x'))").scalar_one())

        assert _in_threads(dim) == [32] * 4
    finally:
        engine.dispose()


def test_sqlalchemy_and_dbt_wrappers_are_accepted_as_they_are(
    tiny_source: Path, tmp_path: Path
) -> None:
    engine = sqlalchemy.create_engine(f"duckdb:///{tmp_path / 'wrapped.duckdb'}")
    try:
        with engine.connect() as conn:
            embed_sql.register(conn, model=str(tiny_source))  # a SQLAlchemy Connection
            raw = conn.connection  # the pool's proxy, around duckdb-engine's wrapper
            embed_sql.register(raw)
            embed_sql.register(raw.dbapi_connection)
            conn.exec_driver_sql("CREATE TABLE t AS SELECT 1 AS id, embed('a') AS v")
            assert len(create_index(conn, "t_index", "t")) == 1
    finally:
        engine.dispose()
    dbt_local = pytest.importorskip("dbt.adapters.duckdb.environments.local")
    con = duckdb.connect()
    try:
        wrapped = dbt_local.DuckDBCursorWrapper(con.cursor())  # what a dbt Python model gets
        embed_sql.register(wrapped, model=str(tiny_source))
        assert con.sql("SELECT len(embed('x'))").fetchall() == [(32,)]
    finally:
        con.close()


def test_other_objects_are_refused_with_what_is_accepted() -> None:
    with pytest.raises(InvalidParameterError, match=r"got pathlib\.PosixPath; pass a DuckDB"):
        embed_sql.register(Path("x.duckdb"))
    with pytest.raises(InvalidParameterError, match=r"SQLAlchemy engine, connection"):
        embed_sql.register(object())


def test_ibis_backend_when_ibis_runs_on_this_duckdb(tiny_source: Path) -> None:
    ibis = pytest.importorskip("ibis")
    backend = ibis.duckdb.connect()
    try:
        backend.list_tables()
    except AttributeError as exc:  # ibis 12 calls fetch_arrow_table, gone in DuckDB 2.0
        pytest.skip(f"ibis {ibis.__version__} does not run on duckdb {duckdb.__version__}: {exc}")
    embed_sql.register(backend, model=str(tiny_source))
    assert backend.raw_sql("SELECT len(embed('x'))").fetchall() == [(32,)]
