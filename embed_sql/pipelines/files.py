"""Files in, files out: embed a text column of Parquet or CSV into Parquet, in bounded memory.

What ``embed-sql embed IN OUT --column text`` runs, for ETL jobs started from cron or an
orchestrator without Python code. The input is read batch by batch (a Parquet file or a
folder of Parquet files row group by row group, see :func:`parquet_batches`; a CSV file
through ``pyarrow.dataset``), each batch is embedded and written as one row group, and the
output replaces ``OUT`` only when every row is written (temp file, then rename), so memory
stays at one batch and a failed run leaves no half-written file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa

from embed_sql._io import atomic_writer
from embed_sql._progress import progress_bar
from embed_sql.exceptions import ColumnNotFoundError, InputTypeError, InvalidParameterError
from embed_sql.models.encoder import shared_encoder

__all__ = ["embed_file", "parquet_batches", "unreadable"]

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv"}


def _format(path: Path) -> str:
    if path.is_dir():
        return "parquet"
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        if suffix in _FORMATS:
            return _FORMATS[suffix]
    msg = (
        f"cannot tell the format of {str(path)!r} from its name; use a .parquet or .csv file "
        "(or a folder of Parquet files)"
    )
    raise InvalidParameterError(msg)


def embed_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    column: str,
    *,
    model: object = None,
    key: str | None = None,
    output_column: str = "v",
    batch_rows: int = 8192,
    progress: bool | None = None,
    prompt: str | None = None,
) -> int:
    """Embed ``column`` of a Parquet or CSV source into a Parquet file; return the row count.

    Parameters
    ----------
    source
        A ``.parquet`` or ``.csv`` file (``.csv.gz`` too), or a folder of Parquet files.
    target
        The Parquet file to write (replaced atomically when done).
    column
        The text column to embed. NULL texts (and empty CSV fields) give NULL vectors.
    model
        Any model name, alias or path (default all-MiniLM-L6-v2); ``potion-base-8M`` for
        the static tier.
    key
        Keep only this column beside the vectors (default: every input column).
    output_column
        The vector column's name; its field metadata names the model.
    batch_rows
        Rows read, embedded and written at a time (one Parquet row group each).
    prompt
        One of the model's prompts (``"document"``), prepended to every text.
    """
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    src = Path(source).expanduser()
    if not src.exists():
        msg = f"input {str(src)!r} does not exist"
        raise InvalidParameterError(msg)
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows <= 0:
        msg = f"batch_rows={batch_rows!r} must be a positive integer"
        raise InvalidParameterError(msg)
    fmt = _format(src)
    file_format: object = fmt
    if fmt == "csv":  # an empty CSV field is a missing text (NULL -> NULL vector), not ""
        import pyarrow.csv as pcsv

        convert = pcsv.ConvertOptions(strings_can_be_null=True)
        file_format = ds.CsvFileFormat(convert_options=convert)
    try:
        dataset = ds.dataset(src, format=file_format)
    except (OSError, pa.ArrowInvalid) as exc:
        msg = f"cannot read {str(src)!r} as {fmt}: {exc}"
        raise InputTypeError(msg) from exc
    names = dataset.schema.names
    for name, role in ((column, "text"), (key, "key")):
        if name is not None and name not in names:
            msg = f"{role} column {name!r} is not in {str(src)!r}; its columns are {names}"
            raise ColumnNotFoundError(msg)
    kind = dataset.schema.field(column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
        msg = f"column {column!r} of {str(src)!r} is {kind}, not text; name a text column"
        raise InputTypeError(msg)
    kept = [key] if key is not None else list(names)
    if output_column in kept:
        msg = (
            f"output column {output_column!r} is already a column of {str(src)!r}; "
            "choose another name (--output-column)"
        )
        raise InvalidParameterError(msg)
    encoder = shared_encoder(model)  # type: ignore[arg-type]
    if prompt is not None:
        encoder.spec.prompt_prefix(prompt)  # an unknown prompt fails before any file is made
    schema = pa.schema([dataset.schema.field(c) for c in kept] + [encoder.field(output_column)])
    read = list(dict.fromkeys([*kept, column]))
    total = dataset.count_rows() if fmt == "parquet" else 0
    if fmt == "parquet":
        batches = parquet_batches(dataset.files, read, batch_rows, schema=dataset.schema)
    else:
        batches = dataset.scanner(columns=read, batch_size=batch_rows).to_batches()
    rows = 0
    with (
        progress_bar(total, progress) as bar,
        atomic_writer(target) as fh,
        pq.ParquetWriter(fh, schema) as writer,
    ):
        for batch in batches:
            if not batch.num_rows:
                continue
            vectors = encoder.encode(batch.column(column), prompt=prompt)
            arrays = [batch.column(c) for c in kept] + [vectors]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            rows += batch.num_rows
            bar.update(batch.num_rows)
    return rows


def parquet_batches(
    files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    columns: Sequence[str] | None = None,
    batch_rows: int = 65_536,
    *,
    schema: pa.Schema | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the rows of Parquet files in batches, in memory bounded by one row group.

    pyarrow's readers over a whole file (``ParquetFile.iter_batches``,
    ``Dataset.to_batches``) keep much of what they decoded until the file ends
    (apache/arrow#39808): after 1M 256-d vectors (a 1 GiB file) in 16,384-row batches,
    1.07 GiB were still held by pyarrow 26; read a row group at a time here, 27 MiB. Feed
    :meth:`~embed_sql.vectors.VectorIndex.from_batches` with it.

    Parameters
    ----------
    files
        A Parquet file, or several read in order (``pyarrow.dataset.dataset(folder).files``).
    columns
        The columns to read (default: all).
    batch_rows
        Rows per batch at most (a batch never spans two row groups).
    schema
        Cast each batch's columns to these types (files of a folder that differ slightly).

    Examples
    --------
    >>> from embed_sql.vectors import VectorIndex
    >>> batches = parquet_batches("vectors.parquet", ["id", "v"])  # doctest: +SKIP
    >>> index = VectorIndex.from_batches(batches)  # doctest: +SKIP
    """
    import pyarrow.parquet as pq

    paths = [files] if isinstance(files, str | os.PathLike) else list(files)
    for path in paths:
        file = pq.ParquetFile(path)
        names = file.schema_arrow.names
        missing = [c for c in columns or () if c not in names]
        if missing:
            msg = f"columns {missing} are not in {str(path)!r}; its columns are {names}"
            raise ColumnNotFoundError(msg)
        for group in range(file.num_row_groups):
            reader = file.iter_batches(batch_rows, row_groups=[group], columns=columns)
            while True:
                try:
                    batch = next(reader)
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise unreadable(path, exc, group) from exc
                yield batch if schema is None else _conform(batch, schema)


def unreadable(
    path: str | os.PathLike[str], exc: Exception, group: int | None = None
) -> InputTypeError:
    """Return the error for Parquet data pyarrow cannot decode, with the fix when it is known.

    DuckDB (2.0 and before) writes a NULL fixed-size array (``FLOAT[d]``, what ``embed()``
    returns for a NULL text) with level data that pyarrow rejects ("Length spanned by list
    offsets ... larger than values array", duckdb/duckdb#24731); DuckDB and Polars read
    such files, pyarrow does not.
    """
    import pyarrow.parquet as pq

    where = repr(os.fspath(path)) + ("" if group is None else f" (row group {group})")
    detail = str(exc).strip()
    if "list offsets" not in detail:
        return InputTypeError(f"cannot read {where} as Parquet: {detail}")
    try:
        writer = pq.ParquetFile(path).metadata.created_by or "an unknown writer"
    except (OSError, pa.ArrowInvalid):
        writer = "an unknown writer"
    msg = (
        f"cannot read {where}, written by {writer}: {detail}. DuckDB writes NULL fixed-size "
        "arrays (FLOAT[d]) to Parquet in a form pyarrow cannot read (duckdb/duckdb#24731). "
        "Write the vectors as lists: COPY (SELECT id, embed(text)::FLOAT[] AS v FROM ...) "
        "TO 'vectors.parquet', or exclude the NULL rows (WHERE text IS NOT NULL)"
    )
    return InputTypeError(msg)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast a batch's columns to the types ``schema`` gives them (when they differ)."""
    wanted = pa.schema([schema.field(name) for name in batch.schema.names])
    if batch.schema.equals(wanted):
        return batch
    arrays = [col.cast(f.type) for col, f in zip(batch.columns, wanted, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=wanted)
