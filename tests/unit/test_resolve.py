from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from embed_sql import models
from embed_sql.exceptions import (
    ExportError,
    InvalidParameterError,
    MissingDependencyError,
    ModelLoadError,
    ModelNotFoundError,
)
from embed_sql.models import export as export_mod
from tests.tiny_model import HIDDEN


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "models").rglob("*") if p.parent.parent.name == "models")


def test_local_directory_is_exported_once_then_reused(
    tiny_source: Path, fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = models.resolve(tiny_source)
    assert first.source == "path"
    assert first.onnx_path.is_file()
    assert first.onnx_path.is_relative_to(fresh_cache)

    def boom(*_: object) -> None:
        msg = "exported twice"
        raise AssertionError(msg)

    monkeypatch.setattr(export_mod, "export_onnx", boom)
    again = models.resolve(tiny_source)
    assert again.onnx_path == first.onnx_path
    assert again.key == first.key


def test_export_leaves_only_complete_entries(tiny_source: Path, fresh_cache: Path) -> None:
    resolved = models.resolve(tiny_source)
    entry = resolved.onnx_path.parent
    assert sorted(p.name for p in entry.iterdir()) == [
        "manifest.json",
        "model.onnx",
        "tokenizer.json",
    ]
    leftovers = [p for p in entry.parent.iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []


def test_an_export_removes_what_a_killed_export_left(tiny_source: Path, fresh_cache: Path) -> None:
    import os
    import time

    from embed_sql.models.registry import spec_from_path

    folder = fresh_cache / "models" / spec_from_path(tiny_source).slug
    stale, young = folder / ".tmp-fp32-killed", folder / ".tmp-fp32-running"
    for leftover in (stale, young):
        (leftover / "model.onnx").parent.mkdir(parents=True)
        (leftover / "model.onnx").write_bytes(b"half an export")
    hours_ago = time.time() - 2 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    models.resolve(tiny_source)
    assert not stale.exists()  # an hour old: no export is still writing it
    assert young.exists()  # may belong to an export running now in another process


def test_failed_export_leaves_nothing_and_a_retry_succeeds(
    tiny_source: Path, fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = export_mod.export_onnx

    def half_written(src: Path, out: Path) -> Path:
        (out / "model.onnx").write_bytes(b"partial")
        msg = "disk full"
        raise ExportError(msg)

    monkeypatch.setattr(export_mod, "export_onnx", half_written)
    with pytest.raises(ExportError, match="disk full"):
        models.resolve(tiny_source)
    slug_dirs = list((fresh_cache / "models").iterdir())
    assert all(list(d.iterdir()) == [] for d in slug_dirs)
    monkeypatch.setattr(export_mod, "export_onnx", real)
    assert models.resolve(tiny_source).onnx_path.is_file()


def test_changed_weights_get_a_new_cache_key(tiny_dir: Path, fresh_cache: Path) -> None:
    before = models.resolve(tiny_dir)
    (tiny_dir / "config.json").write_text(
        (tiny_dir / "config.json").read_text().replace('"hidden_act"', '"hidden_act" ')
    )
    after = models.resolve(tiny_dir)
    assert after.key != before.key
    assert after.onnx_path != before.onnx_path


def test_int8_variant_is_quantised_cached_and_distinct(
    tiny_source: Path, fresh_cache: Path
) -> None:
    fp32 = models.resolve(tiny_source)
    int8 = models.resolve(tiny_source, quantize="int8")
    assert int8.variant == "int8"
    assert int8.key != fp32.key
    assert int8.onnx_path.parent.name.startswith("int8-")
    assert models.resolve(f"{tiny_source}:int8").onnx_path == int8.onnx_path


def test_quantize_argument_is_validated(tiny_source: Path) -> None:
    with pytest.raises(InvalidParameterError, match=r"quantize='int4'.*fp32.*int8"):
        models.resolve(tiny_source, quantize="int4")


def test_ready_onnx_file_is_used_in_place(tiny_source: Path, tmp_path: Path) -> None:
    exported = models.resolve(tiny_source)
    folder = tmp_path / "onnx-model"
    folder.mkdir()
    shutil.copy(exported.onnx_path, folder / "encoder.onnx")
    shutil.copy(exported.tokenizer_path, folder / "tokenizer.json")
    resolved = models.resolve(folder / "encoder.onnx")
    assert resolved.onnx_path == folder / "encoder.onnx"
    assert resolved.source == "path"
    assert models.get(str(folder / "encoder.onnx")).dim == HIDDEN


def _fake_package(root: Path, tiny_source: Path, name: str) -> None:
    pkg = root / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    shutil.copytree(tiny_source, pkg / "model")


def _spec(name: str, **kw: object) -> models.ModelSpec:
    return models.ModelSpec(name=name, dim=HIDDEN, max_tokens=24, **kw)  # type: ignore[arg-type]


def test_installed_package_is_found_then_the_cache_serves_without_it(
    tiny_source: Path,
    fresh_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registered: list[str],
) -> None:
    _fake_package(tmp_path / "site", tiny_source, "fake_model_pkg")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = models.add_model(
        _spec("org/pkg-model", package="fake_model_pkg", package_subdir="model")
    )
    registered.append(spec.name)
    assert models.resolve("org/pkg-model").source == "package"

    monkeypatch.setattr(sys, "path", [p for p in sys.path if "site" not in p])
    shutil.rmtree(tmp_path / "site")
    cached = models.resolve("org/pkg-model")
    assert cached.source == "cache"
    int8 = models.resolve("org/pkg-model:int8")  # quantised from the cached fp32 graph
    assert int8.variant == "int8"


def _fake_hub_cache(root: Path, tiny_source: Path, repo: str) -> Path:
    revision = "0123456789abcdef0123456789abcdef01234567"
    folder = root / f"models--{repo.replace('/', '--')}"
    shutil.copytree(tiny_source, folder / "snapshots" / revision)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(revision)
    return root


def test_hub_path_loads_from_the_local_hugging_face_cache(
    tiny_source: Path,
    fresh_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registered: list[str],
) -> None:
    hub = _fake_hub_cache(tmp_path / "hub", tiny_source, "tiny-org/tiny-bert")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    spec = models.add_model(_spec("tiny-org/tiny-bert", hub_id="tiny-org/tiny-bert"))
    registered.append(spec.name)
    resolved = models.resolve("tiny-org/tiny-bert", offline=True)
    assert resolved.source == "hub"
    enc = models.TextEncoder("tiny-org/tiny-bert")
    assert enc.encode(["food"]).type.list_size == HIDDEN


def test_model_found_nowhere_names_every_place_searched(
    fresh_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registered: list[str],
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    spec = models.add_model(_spec("org/absent", hub_id="org/absent", package="not_installed_pkg"))
    registered.append(spec.name)
    with pytest.raises(ModelNotFoundError) as info:
        models.resolve("org/absent", offline=True)
    text = str(info.value)
    assert "cache" in text
    assert "pip install not-installed-pkg" in text
    assert "org/absent" in text
    assert "local Hugging Face cache" in text


def test_directory_without_weights_is_a_load_error(tiny_dir: Path, fresh_cache: Path) -> None:
    (tiny_dir / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no weights"):
        models.resolve(tiny_dir)


def test_missing_optimum_names_the_extra(
    tiny_source: Path, fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optimum.exporters.onnx", None)
    with pytest.raises(MissingDependencyError, match=r"embed-sql\[export\]"):
        models.resolve(tiny_source)


def test_a_damaged_cache_entry_names_the_folder_and_the_rebuild(
    tiny_source: Path,
    fresh_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registered: list[str],
) -> None:
    _fake_package(tmp_path / "site", tiny_source, "fake_damaged_pkg")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = models.add_model(
        _spec("org/damaged", package="fake_damaged_pkg", package_subdir="model")
    )
    registered.append(spec.name)
    built = models.resolve("org/damaged")
    with built.onnx_path.open("r+b") as fh:  # a disk error or a killed copy by hand
        fh.truncate(1000)
    with pytest.raises(
        ModelLoadError,
        match=r"cache entry is damaged: delete .*fp32-.* `embed-sql models export org/damaged`",
    ):
        models.TextEncoder("org/damaged").encode(["x"])


def test_the_export_is_fused_when_that_is_exact(tiny_source: Path, fresh_cache: Path) -> None:
    import onnx

    from embed_sql.models.export import fuse

    graph = onnx.load(str(models.resolve(str(tiny_source)).onnx_path)).graph
    ops = {node.op_type for node in graph.node}
    assert {"Attention", "SkipLayerNormalization"} <= ops  # onnxruntime's fused operators
    broken = fresh_cache / "config.json"
    broken.write_text("{}")  # no head count: the plain graph stays
    plain = fresh_cache / "plain.onnx"
    shutil.copyfile(models.resolve(str(tiny_source)).onnx_path, plain)
    assert fuse(plain, broken) is False
