"""The pool's fixed costs at sweep scale (issue 11, target 5), counted, never timed.

What a plain ``multiprocessing.Pool`` does not pay, and xprun did: each worker rebuilt the
import→distribution map (half a second of CPU) because its cache key changed whenever the
project's folder did.
"""

from __future__ import annotations

from conftest import git_commit_all

XP = """
import xprun

@xprun.grid(i=list(range({n})))
def xp_pool(config):
    return {{"i": config.i}}
"""


def _cache_files(cache) -> list:
    return sorted((cache / "xprun").glob("distributions-*.json"))


def test_i11_pool_distributions_cache_survives_changes_to_the_project_folder(project, tmp_path):
    # The project's folder is first on sys.path (python -m xprun, every worker) and gains
    # files: its log folder on the first launch, a new module, a notes file.  None of that
    # installs a distribution, so every process must find the map it cached, not build it.
    project.write("xp_pool.py", XP.format(n=4))
    git_commit_all(project.root)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = project.run("-n", "2", env=env)
    assert first.returncode == 0, first.output
    (cached,) = _cache_files(tmp_path / "cache")
    project.write("notes.txt", "the project folder changes\n")
    again = project.run("-n", "2", "--force", env=env)
    assert again.returncode == 0, again.output
    assert _cache_files(tmp_path / "cache") == [cached]


def test_i11_pool_installing_a_distribution_makes_a_new_distributions_cache(project, tmp_path):
    # The other side of the key: a distribution installed into a folder on the path (its
    # .dist-info appears) is seen by the next process, so run.json records it.
    site = tmp_path / "site"
    (site / "extrapkg").mkdir(parents=True)
    (site / "extrapkg" / "__init__.py").write_text("")
    project.write(
        "xp_extra.py", "import extrapkg\n\ndef xp_extra(seed):\n    return {'seed': seed}\n"
    )
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(site)}
    assert project.run("seed=0", env=env).returncode == 0
    (record,) = project.records()
    assert "extra-dist" not in record["packages"]
    info = site / "extra_dist-1.5.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-dist\nVersion: 1.5\n")
    (info / "top_level.txt").write_text("extrapkg\n")
    assert project.run("seed=1", env=env).returncode == 0
    latest = max(project.records(), key=lambda r: r["start"])
    assert latest["packages"].get("extra-dist") == "1.5", latest["packages"]
    assert len(_cache_files(tmp_path / "cache")) == 2
