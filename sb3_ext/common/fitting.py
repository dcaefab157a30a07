"""Supervised fitting of part of a policy on a fixed set of rows (behaviour cloning, prior fitting)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch as th


def fit_on_rows(
    loss_of: Callable[[np.ndarray], th.Tensor],
    parameters: Iterable[th.nn.Parameter],
    n_rows: int,
    epochs: int,
    rng: np.random.Generator,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
) -> list[float]:
    """Minimise ``loss_of(row indices)`` with Adam over shuffled minibatches of ``n_rows`` rows.

    A fresh optimizer on ``parameters`` only, so the model's own optimizer state (and learning
    rate schedule) is left as it was. Returns the mean loss of each epoch.
    """
    optimizer = th.optim.Adam(list(parameters), lr=learning_rate)
    means = []
    for _ in range(epochs):
        losses = []
        for index in np.array_split(rng.permutation(n_rows), max(1, n_rows // batch_size)):
            loss = loss_of(index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        means.append(float(np.mean(losses)))
    return means
