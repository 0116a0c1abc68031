"""MMMLP's token mixing: the reference's kernel-1 Conv1d against a linear layer over the
transposed tensor (the plugin's), forward and backward at the grid's sizes.

    python benchmarks/token_mixing.py [--batch 2048] [--length 20] [--hidden 128] [--threads 1]

Both compute ``L → 4L → L`` with GELU over the positions of a [B, L, H] tensor; best of 5
after a warm-up, in one process, so the ratio compares the two under the same load.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn


def seconds(step, repeats: int = 5) -> float:
    step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(args.batch, args.length, args.hidden, requires_grad=True)
    conv = nn.Sequential(nn.Conv1d(args.length, 4 * args.length, 1), nn.GELU(), nn.Conv1d(4 * args.length, args.length, 1))
    linear = nn.Sequential(nn.Linear(args.length, 4 * args.length), nn.GELU(), nn.Linear(4 * args.length, args.length))

    def conv_step():
        conv(x).sum().backward()

    def linear_step():
        linear(x.transpose(1, 2)).transpose(1, 2).sum().backward()

    reference, plugin = seconds(conv_step), seconds(linear_step)
    print(f"| Conv1d (reference) | {reference:.3f} s |\n| linear over [B, H, L] (plugin) | {plugin:.3f} s |\n"
          f"| ratio | {reference / plugin:.2f}× |")


if __name__ == "__main__":
    main()
