"""Issue 14, trials in flight: with ``-n K`` the local pool keeps K trials running, and when
one ends the next is asked and started at once on the same warm workers (not one batch of K
after another).

Each trial appends ``start <hash>`` and ``end <hash>`` to ``events.log`` (``O_APPEND``, one
short line each), so the assertions are about the order of events, never about time.  The
first trial to start (the one that wins an ``O_EXCL`` token) waits until a release file
appears; the others write it once a third trial has started.  A loop that waits for a whole
batch never starts a third trial while the slow one waits: the slow trial then gives up
(after a bound) and the order shows it ended first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from conftest import Project, git_commit_all
from foreground import FOREGROUND

pytest.importorskip("optuna")

TRIAL = """
import os, time
import xprun

ROOT = os.environ["EVENTS_DIR"]

def event(text):
    fd = os.open(os.path.join(ROOT, "events.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (text + "\\n").encode())
    os.close(fd)

def starts():
    with open(os.path.join(ROOT, "events.log")) as f:
        return sum(1 for line in f if line.startswith("start "))

def first(name):
    try:
        os.close(os.open(os.path.join(ROOT, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False

@xprun.config({"x": 0.0})
@xprun.search(x=xprun.uniform(-5, 5), objective="outcome.loss", trials=5, seed=0,
              sampler="random")
def xp_slow(config, run):
    event("start " + run.hash)
    release = os.path.join(ROOT, "release")
    if os.environ.get("MODE") == "fail":
        raise RuntimeError("this trial fails")
    if os.environ.get("MODE") == "kill" and first("killed"):
        os.kill(os.getpid(), 9)  # the worker dies in the middle of this trial
    if os.environ.get("MODE") == "hang":
        time.sleep(30)  # until Ctrl-C
    if first("slow"):
        for _ in range(600):  # a bound, so that a loop without trials in flight ends
            if os.path.exists(release):
                break
            time.sleep(0.05)
    elif starts() >= 3:
        open(release, "w").close()
    event("end " + run.hash)
    return {"loss": (config.x - 1) ** 2}
"""


def _events(project: Project) -> list[tuple[str, str]]:
    path = project.root / "events.log"
    return [tuple(line.split()) for line in path.read_text().splitlines()]  # type: ignore[misc]


def _statuses(project: Project) -> Counter[str]:
    return Counter(r["status"] for r in project.records("xp_slow.xp_slow"))


def _launch(project: Project, *args: str, mode: str = "") -> tuple[int, str]:
    project.write("xp_slow.py", TRIAL)
    git_commit_all(project.root)
    env = {"EVENTS_DIR": str(project.root), "MODE": mode}
    result = project.run("-n", "2", *args, env=env, timeout=300)
    return result.returncode, result.output


def test_i14_inflight_next_trial_starts_before_the_slowest_of_the_first_two_ends(project):
    code, output = _launch(project)
    assert code == 0, output
    events = _events(project)
    slow = events[0][1]  # the first to start took the token (it starts first)
    slow_end = events.index(("end", slow))
    starts_before = [h for kind, h in events[:slow_end] if kind == "start"]
    assert len(starts_before) >= 3, events  # a third trial started while the slow one ran
    started = Counter(h for kind, h in events if kind == "start")
    assert len(started) == 5 and max(started.values()) == 1, events  # no config twice
    assert _statuses(project) == Counter({"complete": 5})


def test_i14_inflight_a_worker_killed_mid_trial_is_resumed_once_and_the_budget_met(project):
    code, output = _launch(project, mode="kill")
    # The killed run is reported interrupted (exit 1: a worker died under a run); the search
    # runs that trial again on a new worker and still ends with 5 complete trials.
    assert code == 1, output
    assert "died (signal SIGKILL)" in output
    started = Counter(h for kind, h in _events(project) if kind == "start")
    assert len(started) == 5, started
    assert sorted(started.values()) == [1, 1, 1, 1, 2], started  # only the killed one again
    assert _statuses(project) == Counter({"complete": 5})


def test_i14_inflight_exitfirst_starts_no_trial_after_a_failure(project):
    code, output = _launch(project, "-x", mode="fail")
    assert code == 1, output
    started = [h for kind, h in _events(project) if kind == "start"]
    assert len(started) == 2, started  # the two in flight; none asked after the failure
    assert _statuses(project) == Counter({"failed": 2})


def test_i14_inflight_ctrl_c_interrupts_the_trials_in_flight_and_asks_no_more(project):
    project.write("xp_slow.py", TRIAL)
    git_commit_all(project.root)
    env = {**project.env(), "EVENTS_DIR": str(project.root), "MODE": "hang"}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "xprun", "-n", "2"],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: Ctrl-C reaches it and its workers
        **FOREGROUND,  # SIGINT's default action, however the suite was started (nohup, &)
    )
    events = project.root / "events.log"
    while not (events.exists() and len(events.read_text().splitlines()) >= 2):
        assert launcher.poll() is None, launcher.communicate()[0]
        time.sleep(0.05)
    os.killpg(launcher.pid, signal.SIGINT)
    output = launcher.communicate(timeout=120)[0]
    assert launcher.returncode == 2, output
    assert [kind for kind, _ in _events(project)] == ["start", "start"]  # none asked after
    assert _statuses(project) == Counter({"interrupted": 2})


def test_i14_inflight_a_trial_on_a_grid_is_in_flight_until_all_its_points_end(project):
    """With a grid (``seed=0,1``), a trial is two runs: it stays in flight (counted, not
    asked again) until both have ended, and each config runs once."""
    project.write("xp_slow.py", TRIAL.replace('{"x": 0.0}', '{"x": 0.0, "seed": 0}'))
    git_commit_all(project.root)
    env = {"EVENTS_DIR": str(project.root), "MODE": ""}
    result = project.run("-n", "2", "seed=0,1", env=env, timeout=300)
    assert result.returncode == 0, result.output
    started = Counter(h for kind, h in _events(project) if kind == "start")
    assert len(started) == 10 and max(started.values()) == 1, started
    records = project.records("xp_slow.xp_slow")
    assert Counter(r["status"] for r in records) == Counter({"complete": 10})
    assert "5 of 5 trials ended" in result.output


# -- the rebuild's replay of successive halving / Hyperband -----------------------------------


@pytest.mark.parametrize("kind", ["hyperband-auto", "hyperband", "halving-auto"])
def test_i14_rebuild_replay_by_bracket_restores_what_a_live_study_recorded(kind: str) -> None:
    """``build_study`` replays each Hyperband bracket on its own (linear, not a filter of
    every trial at each rung); the rungs, and the decisions on new trials, must be those of a
    live Optuna study that ran the same trials: with ``max_resource="auto"`` (what the search
    uses: the brackets are chosen once a trial has completed, after some have failed with no
    step), and with trials that report no step at all in between."""
    import optuna

    from xprun.study import TrialRecord, build_study

    make = {
        "hyperband-auto": lambda: optuna.pruners.HyperbandPruner(min_resource=1),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(1, 27, 3),
        "halving-auto": lambda: optuna.pruners.SuccessiveHalvingPruner(),
    }[kind]
    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}

    def run(study: optuna.Study, index: int, x: float | None = None) -> TrialRecord:
        trial = study.ask(space) if x is None else study.ask({"x": space["x"]})
        x = trial.params["x"] if x is None else x
        if x is None or index in (0, 1) or index % 7 == 3:  # failed before any step
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return TrialRecord(str(trial.number), trial.number, {"x": x}, "failed", None, {})
        steps: dict[int, float] = {}
        for step in range(27):
            steps[step] = (x - 0.3) ** 2 + 1 / (step + 1)
            trial.report(steps[step], step)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                return TrialRecord(
                    str(trial.number), trial.number, {"x": x}, "pruned", steps[step], steps
                )
        study.tell(trial, steps[26])
        return TrialRecord(str(trial.number), trial.number, {"x": x}, "complete", steps[26], steps)

    live = optuna.create_study(
        study_name="xprun", sampler=optuna.samplers.RandomSampler(seed=2), pruner=make()
    )
    records = [run(live, i) for i in range(60)]
    assert any(r.state == "pruned" for r in records)
    assert any(r.state == "failed" for r in records)
    rebuilt = build_study(records, space, "minimize", optuna.samplers.RandomSampler(seed=2), make())
    assert [t.system_attrs for t in rebuilt.trials] == [t.system_attrs for t in live.trials]
    assert sum(bool(t.system_attrs) for t in rebuilt.trials) > 10
    assert [t.state for t in rebuilt.trials] == [t.state for t in live.trials]
    assert [t.intermediate_values for t in rebuilt.trials] == [
        t.intermediate_values for t in live.trials
    ]
    fates = [[run(s, 100, x).state for x in (0.05, 0.3, 0.95, 0.6, 0.31)] for s in (live, rebuilt)]
    assert fates[0] == fates[1]
