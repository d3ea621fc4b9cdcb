"""Quickstart: a 2 x 3 sweep of a linear regression trained by gradient descent.

cd conftest_examples/quickstart && xprun          # 6 runs
xprun                                             # again: 6 cached, nothing runs
xprun lr=0.5                                      # only the new configs run
xprun seed=0,1,2 --collect-only                   # what a seed sweep would run
"""

import numpy as np

import xprun


@xprun.config({"lr": 0.1, "optimizer": "sgd", "steps": 50, "init_scale": 1.0, "num_workers": 0})
@xprun.grid(lr=[0.01, 0.1], optimizer=["sgd", "momentum", "nesterov"])
def xp_regression(config, dataset, model, logger):
    x, y = dataset
    w = model.copy()
    velocity = np.zeros_like(w)
    for step in range(config.steps):
        lookahead = w + 0.9 * velocity if config.optimizer == "nesterov" else w
        grad = 2 * x.T @ (x @ lookahead - y) / len(y)
        if config.optimizer == "sgd":
            w = w - config.lr * grad
        else:
            velocity = 0.9 * velocity - config.lr * grad
            w = w + velocity
        loss = float(np.mean((x @ w - y) ** 2))
        logger.log_metrics({"loss": loss}, step=step)
    return {"loss": loss, "weight_error": float(np.abs(w - [1.5, -2.0, 0.5, 3.0]).max())}
