"""``embed_sql.register(con)``: the SQL surface on a DuckDB database.

Functions are added once per database (DuckDB shares them with every connection and cursor
to it); the macros are added as TEMP macros of the connection given (so ``USE`` elsewhere
does not hide them) and to the database's ``main`` schema, where every cursor and every
other connection finds them (in a file database they are stored there, as DuckDB's ``fts``
extension stores its macros; ``macros="connection"`` keeps them TEMP). A cursor of a
read-only database gets its macros from a call to ``register`` on it, which is cheap once
the database is registered: it reuses the database's functions, models and indexes. Nothing
else about the connection changes: no setting is touched.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from embed_sql.exceptions import InvalidParameterError
from embed_sql.models import registry
from embed_sql.models.cache import EmbeddingCache
from embed_sql.models.encoder import TextEncoder, shared_encoder
from embed_sql.models.image import ImageEncoder, shared_image_encoder
from embed_sql.models.registry import DEFAULT_MODEL, ModelSpec
from embed_sql.udfs.duckdb import clients
from embed_sql.udfs.duckdb.functions import SPECS, embed_function
from embed_sql.udfs.duckdb.images import image_function, image_macro, udf_name
from embed_sql.udfs.duckdb.macros import MACROS, quote_ident
from embed_sql.udfs.duckdb.state import DatabaseState, duckdb_module, state_of

if TYPE_CHECKING:
    import duckdb

__all__ = ["Registration", "connection_of", "register", "registered_state"]

ModelRef = str | ModelSpec | os.PathLike[str]
_ALIAS = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Registration:
    """What :func:`register` made available: SQL function name → encoder."""

    functions: dict[str, TextEncoder | ImageEncoder] = field(default_factory=dict)
    cache: EmbeddingCache | None = None

    def __repr__(self) -> str:
        names = ", ".join(f"{n}() → FLOAT[{e.dim}] ({e.name})" for n, e in self.functions.items())
        return f"Registration({names})"


def connection_of(con: object) -> duckdb.DuckDBPyConnection:
    """Return the open DuckDB connection ``con`` is or wraps (a client's), else refuse clearly."""
    duckdb = duckdb_module()
    found = clients.unwrap(con, duckdb.DuckDBPyConnection)
    if found is None:
        msg = (
            f"embed_sql needs a DuckDB connection, got {clients.describe(con)}; "
            f"pass {clients.ACCEPTED}"
        )
        raise InvalidParameterError(msg)
    con = found
    try:
        con.cursor().close()
    except duckdb.ConnectionException as exc:
        msg = f"the DuckDB connection is closed ({exc}); open a new one with duckdb.connect()"
        raise InvalidParameterError(msg) from exc
    return con


def registered_state(con: object) -> DatabaseState:
    """Return the state of ``con``'s database, registering it with defaults if needed."""
    con = connection_of(con)
    state = state_of(con)
    if state is None or "embed" not in state.encoders:
        register(con)
        state = state_of(con)
    assert state is not None
    state.add_connection(con)
    return state


def register(
    con: object,
    model: ModelRef | None = None,
    models: Mapping[str, ModelRef] | None = None,
    *,
    cache: EmbeddingCache | str | os.PathLike[str] | None = None,
    macros: str = "database",
    image_model: ModelRef | None = None,
    providers: list[str] | None = None,
) -> Registration:
    """Add ``embed(text)``, ``embed_<alias>(text)`` and every ``embed_*`` macro to a database.

    Parameters
    ----------
    con
        A DuckDB connection or cursor, or what a client wraps one in: a SQLAlchemy
        connection of duckdb-engine, a dbt-duckdb cursor wrapper, an ibis DuckDB backend. A
        SQLAlchemy ``Engine`` registers every connection its pool opens (a ``connect``
        event), now and later. Registering again is safe; registering another connection
        or cursor of a registered database is cheap and shares its models and indexes.
    model
        The model behind ``embed``: a name, alias (``"all-MiniLM-L6-v2:int8"``), spec or
        local path. Default: the database's current one, else all-MiniLM-L6-v2.
    models
        Extra models as ``{"alias": model}``; each becomes ``embed_<alias>(text)`` (and
        ``embed_<alias>_<prompt>(text)`` per prompt of the model, e.g. ``embed_e5_query``), or
        ``embed_<alias>(blob_or_path)`` for an image model; a dual (CLIP-style) model gives
        both, ``embed_<alias>(text)`` and ``embed_<alias>_image(blob_or_path)``, into one
        space. Aliases are lower-case SQL identifiers.
    cache
        An :class:`EmbeddingCache` or a path for one: texts already embedded with the same
        model are looked up instead of recomputed.
    macros
        Where the ``embed_*`` table macros go. ``"database"`` (default): also into the
        database's ``main`` schema, so every connection and cursor to it finds them (dbt,
        jupysql and connection pools run SQL on those); in a file database they are stored
        in the file, like the macros DuckDB's ``fts`` extension writes, and answer only in a
        process that registered. ``"connection"``: TEMP macros of ``con`` only; other
        cursors then need their own ``register`` call. Read-only databases get TEMP macros.

    providers
        onnxruntime execution providers for every model registered here, e.g.
        ``["CUDAExecutionProvider", "CPUExecutionProvider"]`` (needs onnxruntime-gpu); by
        default CUDA when onnxruntime has it, else the CPU.
    image_model
        An image model (``"efficientnet-lite0"``) for ``embed_image(blob_or_path)``: a BLOB
        is an image file's bytes, a VARCHAR a file path; ``FLOAT[d]`` out, NULL for NULL
        and for unreadable images. See :mod:`embed_sql.udfs.duckdb.images`.

    Returns
    -------
    Registration
        The function names and their encoders.

    Raises
    ------
    ModelNotFoundError, InvalidParameterError
        At registration, for an unknown model, a bad alias or a closed connection.

    Examples
    --------
    >>> import duckdb, embed_sql
    >>> con = duckdb.connect()
    >>> embed_sql.register(con, models={"q8": "all-MiniLM-L6-v2:int8"})
    Registration(embed() → FLOAT[384] (...), embed_q8() → FLOAT[384] (...:int8))
    >>> con.sql("SELECT typeof(embed('x'))").fetchall()
    [('FLOAT[384]',)]
    """
    if macros not in ("database", "connection"):
        msg = f"macros={macros!r} is not allowed; use 'database' (the default) or 'connection'"
        raise InvalidParameterError(msg)
    if clients.is_engine(con):  # every connection its pool opens, and one now
        engine = con

        again = functools.partial(
            register,
            model=model,
            models=models,
            cache=cache,
            macros=macros,
            image_model=image_model,
            providers=providers,
        )
        clients.listen_on_engine(engine, again)
        with engine.connect() as first:  # type: ignore[attr-defined]
            return again(first)
    con = connection_of(con)
    wanted: dict[str, ModelRef] = {}
    if model is not None:
        wanted["embed"] = model
    for alias, ref in (models or {}).items():
        if not isinstance(alias, str) or not _ALIAS.match(alias):
            msg = (
                f"model alias {alias!r} is not allowed; use a lower-case SQL identifier "
                "such as 'multi' or 'q8' (it becomes embed_<alias>)"
            )
            raise InvalidParameterError(msg)
        wanted[f"embed_{alias}"] = ref
    texts: dict[str, ModelRef] = {}
    images: dict[str, ModelRef] = {}
    for name, ref in wanted.items():
        modality = _modality(ref)
        if modality in ("text", "dual"):
            texts[name] = ref
        if modality in ("image", "dual"):  # a dual model's image tower: embed_<alias>_image
            images[name if modality == "image" else f"{name}_image"] = ref
    if image_model is not None:
        images["embed_image"] = image_model
    for name in (*texts, *images):
        _refuse_reserved(name, f"model alias {name.removeprefix('embed_')!r}")
    image_encoders = {
        name: shared_image_encoder(ref, providers=providers) for name, ref in images.items()
    }
    encoders = {name: shared_encoder(ref, providers=providers) for name, ref in texts.items()}
    state = state_of(con, create=True)
    assert state is not None
    if "embed" not in encoders and "embed" not in state.encoders:
        encoders = {"embed": shared_encoder(DEFAULT_MODEL, providers=providers), **encoders}
    with state.lock:
        for name, encoder in encoders.items():
            _set_embed(con, state, name, encoder)
        for name, image_encoder in image_encoders.items():
            _set_image(con, state, name, image_encoder)
        _set_prompts(con, state)
        if cache is not None:
            state.cache = cache if isinstance(cache, EmbeddingCache) else EmbeddingCache(cache)
        for spec in SPECS:
            if spec.name not in state.functions:
                _create(
                    con,
                    state,
                    spec.name,
                    spec.make(state),
                    spec.params,
                    spec.result,
                    special=not spec.null_in_null_out,
                    side_effects=spec.side_effects,
                )
        state.add_connection(con)
    _install_macros(con, state, macros)
    prompted = {fname: state.encoders[base] for fname, (base, _) in state.prompted.items()}
    return Registration({**state.encoders, **prompted, **state.image_encoders}, state.cache)


def _set_prompts(con: duckdb.DuckDBPyConnection, state: DatabaseState) -> None:
    """Add ``<name>_<prompt>(text)`` for every prompt of every text model, once each."""
    duckdb = duckdb_module()
    for name, encoder in list(state.encoders.items()):
        for prompt, _ in encoder.spec.prompts:
            fname = f"{name}_{prompt}"
            if not _ALIAS.match(prompt):
                msg = f"prompt {prompt!r} of {encoder.name!r} is not a SQL identifier; rename it"
                raise InvalidParameterError(msg)
            _refuse_reserved(fname, f"prompt {prompt!r} of {name}()")
            taken = fname in state.encoders or fname in state.image_encoders
            if taken or state.prompted.get(fname, (name, ""))[0] != name:
                msg = f"{fname}() would be both a prompt of {name}() and another function"
                raise InvalidParameterError(msg)
            if fname in state.functions and state.prompted.get(fname) == (name, encoder.dim):
                continue
            if fname in state.functions:  # the model behind it changed dimension
                with contextlib.suppress(duckdb.InvalidInputException):
                    con.remove_function(fname)
                del state.functions[fname]
            state.prompted[fname] = (name, encoder.dim)
            _create(
                con,
                state,
                fname,
                embed_function(state, name, prompt),
                (pa.string(),),
                duckdb.array_type(duckdb.sqltypes.FLOAT, encoder.dim),
                special=True,
                side_effects=False,
            )


@functools.cache
def _reserved() -> frozenset[str]:
    """Return the names of embed_sql's own macros and functions: no model may take one."""
    macros = {m.group(1) for macro in MACROS if (m := re.search(r"MACRO\s+(\w+)", macro))}
    return frozenset(macros | {spec.name for spec in SPECS})


def _refuse_reserved(name: str, what: str) -> None:
    """Refuse a model function named as one of embed_sql's (``embed_classify``, ``embed_sql_*``)."""
    if name in _reserved() or name.startswith("embed_sql_"):
        kind = "internal function" if name.startswith("embed_sql_") else "macro"
        msg = (
            f"{what} would make {name}(), which is embed_sql's own {kind} of that name; "
            "choose another alias (e.g. add a suffix: models={'classify_m': ...})"
        )
        raise InvalidParameterError(msg)


def _modality(ref: ModelRef) -> str:
    spec = ref if isinstance(ref, ModelSpec) else registry.get(os.fspath(ref))
    return spec.modality


def _set_image(
    con: duckdb.DuckDBPyConnection, state: DatabaseState, name: str, encoder: ImageEncoder
) -> None:
    """Point the macro ``name`` at an image encoder; (re)create its function on a new type."""
    fn = udf_name(name)
    current = state.image_encoders.get(name)
    if name in state.encoders:
        msg = (
            f"{name}() is a text function on this database; register the image model under "
            "another alias"
        )
        raise InvalidParameterError(msg)
    state.image_encoders[name] = encoder
    if current is not None and current.dim == encoder.dim:
        return
    if fn in state.functions:
        with contextlib.suppress(duckdb_module().InvalidInputException):
            con.remove_function(fn)
        del state.functions[fn]
    duckdb = duckdb_module()
    _create(
        con,
        state,
        fn,
        image_function(state, name),
        (pa.binary(), pa.string()),
        duckdb.array_type(duckdb.sqltypes.FLOAT, encoder.dim),
        special=True,
        side_effects=False,
    )


def _set_embed(
    con: duckdb.DuckDBPyConnection, state: DatabaseState, name: str, encoder: TextEncoder
) -> None:
    """Point ``name`` at ``encoder``; (re)create the function only if its type changes."""
    current = state.encoders.get(name)
    if current is not None and current.dim == encoder.dim:
        state.encoders[name] = encoder  # the function reads its encoder from the state
        return
    if current is not None:  # a new dimension: DuckDB must see a new result type
        creator = state.creators[name]()
        if creator is not con:
            msg = (
                f"{name}() returns FLOAT[{current.dim}] ({current.name}) on this database, and "
                "only the connection that registered it can change its type; register "
                f"{encoder.name} under a new alias instead (models={{'alias': ...}})"
            )
            raise InvalidParameterError(msg)
        with contextlib.suppress(duckdb_module().InvalidInputException):
            con.remove_function(name)
        del state.functions[name]
    state.encoders[name] = encoder
    duckdb = duckdb_module()
    _create(
        con,
        state,
        name,
        embed_function(state, name),
        (pa.string(),),
        duckdb.array_type(duckdb.sqltypes.FLOAT, encoder.dim),
        special=True,  # NULLs reach the encoder, which may also answer NULL (word vectors)
        side_effects=False,
    )


def _create(
    con: duckdb.DuckDBPyConnection,
    state: DatabaseState,
    name: str,
    fn: object,
    params: tuple[pa.DataType, ...],
    result: object,
    *,
    special: bool,
    side_effects: bool,
) -> None:
    duckdb = duckdb_module()
    fn = state.stoppable(name, fn)  # type: ignore[arg-type]
    try:
        con.create_function(  # type: ignore[call-overload]  # types built at run time
            name,
            fn,
            [_sql_type(p) for p in params],
            _sql_type(result) if isinstance(result, pa.DataType) else result,
            type="arrow",
            null_handling="special" if special else "default",
            side_effects=side_effects,
        )
    except duckdb.CatalogException as exc:  # made by an earlier embed_sql in this process
        msg = (
            f"{name}() already exists on this database but not from this embed_sql state "
            f"({exc}); register on the connection that made it, or open a new database"
        )
        raise InvalidParameterError(msg) from exc
    state.functions[name] = fn  # DuckDB drops its reference when `con` closes: keep ours
    state.creators[name] = weakref.ref(con)


def _sql_type(t: pa.DataType) -> object:
    """Return the DuckDB type of an Arrow type (result and argument types declared once)."""
    duckdb = duckdb_module()
    if pa.types.is_list(t):
        return duckdb.list_type(_sql_type(t.value_type))
    if pa.types.is_struct(t):
        fields = {t.field(i).name: _sql_type(t.field(i).type) for i in range(t.num_fields)}
        return duckdb.struct_type(fields)
    names = {"int32": "INTEGER", "int64": "BIGINT", "float": "FLOAT", "double": "DOUBLE"}
    names |= {"string": "VARCHAR", "bool": "BOOLEAN", "binary": "BLOB"}
    return getattr(duckdb.sqltypes, names[str(t)])


def _install_macros(con: duckdb.DuckDBPyConnection, state: DatabaseState, scope: str) -> None:
    """TEMP macros on ``con``; with ``scope="database"`` also in the database's ``main``.

    TEMP macros keep working on ``con`` after ``USE`` elsewhere; the ones in ``main`` are
    what every other connection and cursor of the database finds. They are written once per
    database and process (a read-only database keeps TEMP macros only).
    """
    images = [image_macro(name) for name in sorted(state.image_encoders)]
    for macro in (*MACROS, *images):
        con.execute("CREATE OR REPLACE TEMP " + macro.strip())
    if scope == "connection":
        return
    duckdb = duckdb_module()
    cur = con.cursor()
    try:
        db, readonly = cur.execute(
            "SELECT database_name, readonly FROM duckdb_databases() "
            "WHERE database_name = current_database()"
        ).fetchall()[0]
        stored = [(db.lower(), m) for m in MACROS] + [(f"{db.lower()}|{m}", m) for m in images]
        todo = [(tag, m) for tag, m in stored if tag not in state.stored_macros]
        if readonly or not todo:
            return
        try:
            cur.execute("BEGIN TRANSACTION")
            for _, macro in todo:
                body = macro.strip().removeprefix("MACRO ")
                cur.execute(f"CREATE OR REPLACE MACRO {quote_ident(db, 'main')}.{body}")
            cur.execute("COMMIT")
        except duckdb.Error:  # e.g. a conflicting catalog change: TEMP macros only, for now
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            return
        state.stored_macros.update(tag for tag, _ in todo)
    finally:
        cur.close()
