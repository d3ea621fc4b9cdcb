"""Fixtures shared by every experiment in this folder (and below)."""

import numpy as np

import xprun


@xprun.fixture(scope="session")
def dataset():
    """A small regression problem, made once per session and shared by every run."""
    rng = np.random.default_rng(1234)
    x = rng.normal(size=(256, 4))
    w = np.array([1.5, -2.0, 0.5, 3.0])
    y = x @ w + 0.1 * rng.normal(size=256)
    return x, y


@xprun.fixture
def model(config, seed):
    """Fresh weights for each run, drawn from the run's seed."""
    rng = np.random.default_rng(seed)
    return rng.normal(scale=config.init_scale, size=4)
