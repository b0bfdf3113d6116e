"""Run one baseline packer as a whole process, the way its users would: pack, then `np.save`.

    python -m benchmarks.run_baseline orjson_numpy --input F.jsonl --output O.npy --seq-len 1024 --stride 512

The benchmark suite times this process (start-up included, like `python -m fastpack`) and
compares O.npy with fastpack's output.
"""
from __future__ import annotations

import argparse
import sys
import time

from benchmarks import baselines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run_baseline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=baselines.BASELINES)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--stride", type=int)
    p.add_argument("--eos-id", type=int, default=0)
    args = p.parse_args(argv)

    import numpy as np

    started = time.perf_counter()
    windows = baselines.BASELINES[args.name](args.input, args.seq_len, args.stride or args.seq_len, args.eos_id)
    np.save(args.output, windows)
    print(f"{args.name}: {windows.shape[0]:,} windows x {windows.shape[1]} -> {args.output}"
          f" in {time.perf_counter() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
