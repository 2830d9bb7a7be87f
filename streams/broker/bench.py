"""Measure the local broker: start time (first and warm), stop time, resident memory.

Run ``python -m streams.broker.bench [--runs N] [--json PATH]`` (``make bench-broker``). Each run
starts a broker in a fresh temporary data directory on free ports, so the first start of every
run includes formatting the storage; the second start in the same directory is a warm restart.
Prints one line per measurement and writes them all as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from streams.broker.jars import kafka_version, resolve_jars
from streams.broker.local import LocalBroker
from streams.ports import free_port
from streams.settings import Settings

# RSS right after "ready" understates a broker that has served traffic; a few seconds later
# the JIT and the group coordinator have settled.
_SETTLE_S = 10.0


def _one_run(settings: Settings) -> dict[str, float]:
    broker = LocalBroker(settings)
    t0 = time.perf_counter()
    status = broker.start()
    first_start = time.perf_counter() - t0
    rss_ready = status.rss_bytes or 0
    time.sleep(_SETTLE_S)
    rss_settled = broker.status().rss_bytes or 0
    t0 = time.perf_counter()
    broker.stop()
    stop = time.perf_counter() - t0
    t0 = time.perf_counter()
    broker.start()
    warm_start = time.perf_counter() - t0
    broker.stop()
    return {
        "first_start_s": first_start,
        "warm_start_s": warm_start,
        "stop_s": stop,
        "rss_ready_mib": rss_ready / 2**20,
        "rss_settled_mib": rss_settled / 2**20,
    }


def main() -> None:
    """Run the benchmark and print and write its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("bench-results/broker.json"))
    args = parser.parse_args()
    base = Settings()
    resolve_jars(base.cache_dir)  # downloads are not part of the start time
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="cityops-bench-") as data_dir:
            settings = base.model_copy(
                update={
                    "broker_url": None,
                    "data_dir": Path(data_dir),
                    "local_broker_port": free_port(),
                    "local_controller_port": free_port(),
                }
            )
            runs.append(_one_run(settings))
            print(" ".join(f"{key}={value:.2f}" for key, value in runs[-1].items()), flush=True)
    summary = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    result = {
        "benchmark": "local-broker",
        "kafka_version": kafka_version(),
        "heap_mb": base.local_broker_heap_mb,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": runs,
        "median": summary,
    }
    print("median " + " ".join(f"{key}={value:.2f}" for key, value in summary.items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
