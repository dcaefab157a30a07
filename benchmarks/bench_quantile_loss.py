"""QuantileDQN's quantile-Huber loss beside sb3-contrib's, forward + backward, in one process.

The loss's inputs as QuantileDQN makes them with rl-zoo3's CartPole settings: batch 64, 25 quantiles,
one or two critics against a shared target. Median microseconds per forward + backward over
--rounds interleaved rounds of --calls calls each, one torch thread, CPU time.

    python benchmarks/bench_quantile_loss.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from sb3_contrib.common.utils import quantile_huber_loss as contrib_quantile_huber_loss

from sb3_ext.quantile_dqn.loss import quantile_huber_loss


def contrib_loss(current: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return contrib_quantile_huber_loss(current, target, sum_over_quantiles=True)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "sb3-contrib quantile_huber_loss": contrib_loss,
    "sb3_ext closed-form gradient": quantile_huber_loss,
}


def microseconds_per_call(loss_fn: Callable, current: torch.Tensor, target: torch.Tensor, calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        loss_fn(current, target).backward()
    return (time.process_time() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-quantiles", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)

    print(f"batch {args.batch_size}, {args.n_quantiles} quantiles, forward + backward, median µs (CPU, one thread)\n")
    print("| critics | " + " | ".join(LOSSES) + " | ratio |")
    print("|---|" + "---|" * (len(LOSSES) + 1))
    for n_critics in (1, 2):
        shape = (args.batch_size, n_critics, args.n_quantiles)
        current = torch.randn(shape, generator=generator).requires_grad_(True)
        target = torch.randn(args.batch_size, 1, args.n_quantiles, generator=generator)
        times: dict[str, list[float]] = {name: [] for name in LOSSES}
        for _ in range(args.rounds):
            for name, loss_fn in LOSSES.items():
                times[name].append(microseconds_per_call(loss_fn, current, target, args.calls))
        medians = [statistics.median(times[name]) for name in LOSSES]
        print(f"| {n_critics} | " + " | ".join(f"{m:.0f}" for m in medians) + f" | {medians[0] / medians[1]:.2f}x |")


if __name__ == "__main__":
    main()
