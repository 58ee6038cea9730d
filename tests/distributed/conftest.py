"""One local Ray session for the whole test session: 2 CPUs, a small object store, quiet."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    # set before ray starts: the workers inherit the driver's environment
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # 2.60 warns about token auth
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    # the workers import test modules (classes defined here) as pytest did for the driver
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])]
    )
    pytest.importorskip("ray")
    import ray
    import ray.data

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 * 2**20,
        logging_level=logging.WARNING,
    )
    ctx = ray.data.DataContext.get_current()
    ctx.print_on_execution_start = False
    ctx.execution_no_progress_timeout_s = 120  # a scheduling hang fails a test, not CI
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    yield ray
    ray.shutdown()
