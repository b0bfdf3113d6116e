"""One loss forward + backward in a fresh process, for its peak RSS (benchmarks/test_bench_train.py).

    python -m benchmarks.loss_memory {chunked,plain,inputs} --rows 4096 --vocab 32000 --d-model 384

`inputs` builds the same tensors and gradients without any loss: what the others are measured above.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from trainer.fused import linear_cross_entropy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=["chunked", "plain", "inputs"])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--d-model", type=int, default=384)
    args = parser.parse_args()
    torch.manual_seed(0)
    h = torch.randn(args.rows, args.d_model, requires_grad=True)
    weight = (0.02 * torch.randn(args.vocab, args.d_model)).requires_grad_()
    targets = torch.randint(0, args.vocab, (args.rows,))
    started = time.perf_counter()
    if args.variant == "inputs":
        h.grad, weight.grad = torch.ones_like(h), torch.ones_like(weight)
    elif args.variant == "chunked":
        linear_cross_entropy(h, weight, targets).backward()
    else:
        F.cross_entropy(F.linear(h, weight), targets, reduction="sum").backward()
    print(f"{time.perf_counter() - started:.3f}")


if __name__ == "__main__":
    main()
