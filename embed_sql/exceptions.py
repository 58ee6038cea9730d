"""Exceptions and warnings raised by embed_sql.

Every error derives from :class:`EmbedSQLError` and from the builtin it refines, so
``except LookupError`` and ``except EmbedSQLError`` both work::

    EmbedSQLError
    ├── ModelNotFoundError        (LookupError)   unknown name, or nowhere to load it from
    ├── ModelLoadError            (OSError)       a model directory or file that cannot be read
    ├── FileWriteError            (OSError)       a file that cannot be written (folder, disk)
    ├── ExportError               (RuntimeError)  ONNX export or quantisation failed
    ├── InputTypeError            (TypeError)     non-text input where text is required
    ├── ColumnNotFoundError       (LookupError)   a named column is not in the table
    ├── InvalidParameterError     (ValueError)    an argument outside its allowed range
    ├── DimensionMismatchError    (ValueError)    vectors of different lengths or models
    ├── IndexFileError            (ValueError)    an index file truncated, corrupt or crafted
    └── MissingDependencyError    (ImportError)   an optional extra is not installed

    EmbedSQLWarning (UserWarning)

Messages say what was given, what is allowed, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ColumnNotFoundError",
    "DimensionMismatchError",
    "EmbedSQLError",
    "EmbedSQLWarning",
    "ExportError",
    "FileWriteError",
    "IndexFileError",
    "InputTypeError",
    "InvalidParameterError",
    "MissingDependencyError",
    "ModelLoadError",
    "ModelNotFoundError",
    "OperationInterrupted",
]


class EmbedSQLError(Exception):
    """Base class of every error raised by embed_sql."""


class ModelNotFoundError(EmbedSQLError, LookupError):
    """Exception raised when a model name is unknown or cannot be found anywhere."""


class ModelLoadError(EmbedSQLError, OSError):
    """Exception raised when a model directory or file exists but cannot be used."""


class FileWriteError(EmbedSQLError, OSError):
    """Exception raised when a file cannot be written (a read-only folder, a full disk)."""


class ExportError(EmbedSQLError, RuntimeError):
    """Exception raised when exporting or quantising a model to ONNX fails."""


class InputTypeError(EmbedSQLError, TypeError):
    """Exception raised when input is not of a type the call accepts (e.g. non-text)."""


class ColumnNotFoundError(EmbedSQLError, LookupError):
    """Exception raised when a column named in a call is not in the table or frame."""


class InvalidParameterError(EmbedSQLError, ValueError):
    """Exception raised when an argument is outside its allowed range."""


class DimensionMismatchError(EmbedSQLError, ValueError):
    """Exception raised when vectors of different dimensions or models are combined."""


class IndexFileError(EmbedSQLError, ValueError):
    """Exception raised when an index file is truncated, corrupt, crafted or of another format."""


class OperationInterrupted(EmbedSQLError, RuntimeError):
    """An embedding stopped by :func:`embed_sql.interrupt` before it finished."""


class MissingDependencyError(EmbedSQLError, ImportError):
    """Exception raised when an optional dependency (an extra) is not installed."""


class EmbedSQLWarning(UserWarning):
    """Warning issued by embed_sql."""
