"""Benchmarks: `python bench/run.py [NAME ...]` prints one JSON line per figure.

Each line has `name`, `value`, `unit`, and `ratio` where two things run side by side in the same process
(machines are shared and noisy, so only ratios measured together are comparable). Nothing here is asserted;
tests check behaviour, this measures it. Benchmarks live in the `*_benchmarks.py` modules beside this file.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import torch
from common import BENCHMARKS

for module in sorted(Path(__file__).parent.glob("*_benchmarks.py")):
    importlib.import_module(module.stem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {', '.join(BENCHMARKS)}")
    torch.manual_seed(0)
    for name in args.names or BENCHMARKS:
        BENCHMARKS[name]()


if __name__ == "__main__":
    main()
