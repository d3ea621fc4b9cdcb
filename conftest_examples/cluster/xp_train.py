"""A training loop that survives preemption: it checkpoints when SLURM warns (USR2) and
resumes where it stopped when the job is requeued.

    git init && git add -A && git commit -m start    # jobs run from a snapshot of the code
    xprun                                            # one sbatch call: a 3 x 2 array
    xprun status
    xprun show --group-by config.lr -c outcome.loss
"""

import time

import xprun


@xprun.config({"lr": 0.1, "epochs": 30, "width": 16})
@xprun.grid(lr=[0.1, 0.03, 0.01], width=[16, 64])
@xprun.resources(cpus=1, mem="1G", time="00:10:00")
def xp_train(config, logger, run):
    state = logger.load_checkpoint() or {"epoch": 0, "loss": 10.0}
    logger.on_interrupt(lambda: state)  # saved if the job is preempted or hits its time limit
    while state["epoch"] < config.epochs:
        time.sleep(0.1)  # one epoch of work
        state["loss"] *= 1 - config.lr
        state["epoch"] += 1
        logger.log_metrics({"loss": state["loss"]}, step=state["epoch"])
    return {"loss": state["loss"], "attempts": run.attempt}
