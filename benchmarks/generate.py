"""Time and memory of generating a synthetic population.

Usage: python -m benchmarks.generate --people 1000000 [--out DIR] [--seed 1]
Prints wall time and peak resident memory (this process and its children).
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

from riskstrat.ingest.synthetic.settings import SyntheticSettings
from riskstrat.pipelines.generate import write_synthetic


def _rss_now() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], _rss_now())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        start = time.perf_counter()
        write_synthetic(out, args.people, args.seed, SyntheticSettings())
        wall = time.perf_counter() - start
        size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    done.set()
    sampler.join()
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    gib = 1024**3
    print(f"people: {args.people:,}")
    print(f"wall time: {wall:.1f} s")
    print(f"peak RSS: {max(self_peak, peak[0]) / gib:.2f} GiB (children {children_peak / gib:.2f} GiB)")
    print(f"parquet written: {size / gib:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
