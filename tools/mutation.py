"""Mutation score of the modules that guard data: ``python tools/mutation.py [MODULE...]``.

A mutant is the module with one small change (a comparison, a boolean operator, a constant,
a condition, a returned value); the module's tests should fail on it ("killed").  A mutant
they pass ("survived") is a behaviour no test checks.  For identity, claims, records, the
query language and ``-k``, that is a missing test (docs/quality.md).

How it runs: the tests are run with ``pytest`` in a child process forked from this one for
each mutant, with the mutant served by an import hook in place of the module, so nothing on
disk changes (other people may be working in the same tree).  Tests that drive xprun in a
subprocess would import the original module: they are deselected, and each module is tested
by its fast unit and in-process tests (``TESTS``).  The unmutated run records which lines
each test runs (coverage.py); a mutant is then given only the tests that ran its lines (all
of them for lines run at import), property tests last.  A mutant whose tests run longer than
a few times the unmutated run is counted killed (an endless loop).

Equivalent mutants (no test could tell them apart: same behaviour) are listed in
``EQUIVALENT`` with the reason, and left out of the score.  Exit status: 1 when a module
scores below its floor in ``FLOORS``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.abc
import importlib.util
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: module → the test files that exercise it without a subprocess, fastest first.
TESTS: dict[str, list[str]] = {
    "xprun.identity": [
        "tests/test_identity.py",
        "tests/test_trust_identity.py",
    ],
    "xprun.store": [
        "tests/test_mutation_store.py",
        "tests/test_store.py",
        "tests/test_i11_run_path.py",
        "tests/test_inprocess_faults.py",
        "tests/test_trust_runs.py",
        "tests/test_heartbeat_patience.py",
    ],
    "xprun.runner": [
        "tests/test_mutation_runner.py",
        "tests/test_inprocess_faults.py",
        "tests/test_trust_runs.py",
        "tests/test_i12_runs.py",  # retries (in-process launches)
        "tests/test_cpu_path.py",
        "tests/test_i11_journal.py",  # the results journal's hand-off (in-process launches)
    ],
    "xprun.reader.query": ["tests/test_query.py", "tests/test_mutation_query.py"],
    "xprun.keyword": ["tests/test_keyword.py", "tests/test_mutation_keyword.py"],
    # Issue 12: the CLI tests of these modules (tests/test_i12_*.py) run xprun in a
    # subprocess; their unit and in-process tests are in test_mutation_i12_<module>.py.
    "xprun.hydracompat": ["tests/test_mutation_i12_hydracompat.py"],
    "xprun.history": ["tests/test_mutation_i12_history.py"],
    "xprun.markers": ["tests/test_mutation_i12_markers.py"],
    "xprun.skipping": ["tests/test_mutation_i12_skipping.py"],
    "xprun.reader.metrics": [
        "tests/test_mutation_i12_metrics.py",
        "tests/test_reader_selection.py",  # a selection's frame (metrics.selection)
    ],
    # Issue 11: the index's shortcuts (folders not listed, rows merged in Arrow); the Reader
    # runs in the test process, the launches that make its runs in a subprocess.
    "xprun.reader.index": [
        "tests/test_i11_reader_scale.py",
        "tests/test_reader_scale.py",
        "tests/test_i11_reader_cold.py",
        "tests/test_i11_journal.py",
    ],
    "xprun.reader.prefetch": ["tests/test_i11_reader_cold.py"],
    # Node-id and hash selection only (run with --only on its functions: large modules).
    "xprun.collect": ["tests/test_mutation_i12_selection.py"],
    "xprun.session": ["tests/test_mutation_i12_selection.py"],
    # Issues 13 and 14: each module's unit tests in the test file (its CLI tests run
    # xprun in a subprocess, and are deselected), and test_mutation_i1<N>_<module>.py with
    # in-process and unit tests written where mutation testing found a rule unchecked.
    "xprun.codedigest": ["tests/test_mutation_i13_codedigest.py", "tests/test_i13_stale.py"],
    "xprun.runref": [
        "tests/test_mutation_i13_runref.py",
        "tests/test_mutation_i14_runref.py",
        "tests/test_i13_reproduce.py",
    ],
    "xprun.trash": ["tests/test_mutation_i13_cleanup.py", "tests/test_i13_cleanup.py"],
    # What rm and gc delete (run with --only on the deciding functions: a large module).
    "xprun.cleanup": ["tests/test_mutation_i13_cleanup.py", "tests/test_i13_cleanup.py"],
    # Issue 14: the trials a search reads back (run with --only "trial_records:"): its
    # tests call the Reader's side in-process on runs a fixture launched.
    "xprun.study": ["tests/test_i14_study.py"],
    # Issue 11: the config fixture's recycled DictConfig (a wrong refill hands a run another
    # run's values).
    "xprun.readonlyconfig": ["tests/test_readonly_config.py", "tests/test_cpu_path.py"],
    # Issue 11, target 6: the results journal (a line trusted wrongly gives a run another
    # state's row); its tests read through the journal and compare with the files.
    "xprun.journal": ["tests/test_i11_journal.py"],
    # Issue 11, target 2: the skip check's completion summary (a run wrongly taken for
    # complete is never run), which may take a record from the journal.
    "xprun.completion_summary": ["tests/test_i11_skip.py", "tests/test_i11_journal.py"],
}

#: The lowest score each module may have (issue 10): raised, never lowered.
FLOORS: dict[str, float] = {
    "xprun.identity": 85.0,
    "xprun.store": 85.0,
    "xprun.runner": 85.0,
}

_NO_OWNER = "list_claims reads b'' and None alike: no owner (json.loads(raw) if raw else {})"
_CLAIM_SEES_IT = (
    "without the early check, claiming finds the same live owner (acquire writes nothing then) "
    "and the same report is made"
)
_LAST_ANYWAY = (
    "trylast=True on a built-in hook: the built-ins are registered first, so every plugin and "
    "conftest is called before them with or without it"
)
_SAME_LENGTH = "zip(strict=True) of lists made the same length: strict never has to raise"
_FIRST_PART = "the maxsplit of a split of which only the first part is taken"
_FROZEN = "frozen=True only forbids assignments, and no code assigns to these records"
_ONERROR = (
    "which of rmtree's two error hooks is used (onexc from 3.12, onerror before, still "
    "working, deprecated): both hand the error to the same check"
)
_TRUTH = "its callers test the result for truth: False and None alike"

#: (module, mutant id as printed) → why no test can kill it.
# The prefetching helper's threads, queue and pipe size change how far ahead it runs, never
# what the Reader reads; the cold threshold's scale: a chunk read from the page cache reads
# no block from the disk and one read cold hundreds per run, and no test can make the kernel
# count anything in between.
_TUNING = "a tuning constant of the prefetching helper: speed only, the rows never depend on it"
_COLD_SCALE = "the cold threshold's scale or boundary: warm chunks read 0 blocks, cold ones ~100s"
# xprun.journal's equivalent mutants, by reason (each checked against its line).
_J_TUNE = "a batch size, a flush interval or a size limit: when lines are written, not what"
_J_CENC = (
    "the JSON text of a line: json's C encoder made once, or JSONEncoder.encode where there "
    "is none (the same separators: the same text)"
)
_J_SAMEVALUE = (
    "an encoder flag that changes the text a line holds, not the value it decodes to "
    "(sorted keys, ASCII escapes) or only for values a record never holds (non-text keys; "
    "NaN, whose line is then left out: its run is read from its files)"
)
_J_CACHE = "a cache of texts made per object (its size, its hit test): the same text made again"
_J_NEG_FD = "a closed or unopened file's descriptor: any negative number; 0 is never ours"
_J_FORKLIST = "the at-fork hook is registered once: a list holding False is not empty either"
_J_STRICT = _SAME_LENGTH
_J_NONDICT = "a record's code that is no object: None and the value both make no _code column"
_J_FAILED = "a writer that failed takes no more lines (append), so its flush has none to write"
_J_UNPACK = (
    "a value of the wrong shape that passes fails the unpacking below it with the same "
    "ValueError (a list of another length, a mapping whose first key is no signature)"
)
_J_DUPKEYS = (
    "the fields a writer shares, kept in each line too: the same key twice in one JSON "
    "object decodes to its one value"
)
_J_PARSEDCACHE = "the decoded code objects of a file, not cached: decoded again, the same value"


#: The journal's searches start at the hash (character 19): ``find`` gives -1 or 19 and more,
#: so a comparison with 0 or 1 cannot tell them apart.
_J_FIND = "a position found from character 19 on is -1 or at least 19: 0 and 1 are alike"

#: A descriptor ``os.open`` returns in xprun is never 0 or 1: the standard streams are open in
#: every process it runs in (a pool worker's and a cluster job's stdin too).
_S_FD = "a descriptor os.open returns is never 0 or 1: the standard streams hold them"

EQUIVALENT: dict[tuple[str, str], str] = {
    ("xprun.store", "_read_claim: return b'' -> return None"): _NO_OWNER,
    ("xprun.store", "_read_claim_file: return b'' -> return None"): (
        f"{_NO_OWNER}; Claim._token_on_disk too (_read_claim_file(...) or b'null')"
    ),
    ("xprun.store", "_machine_id: return '' -> return None"): (
        "an unknown machine either way: is_stale only compares a machine id that is truthy"
    ),
    ("xprun.store", "_claim_number: 1 -> 2"): (
        "-2 for a name that is no claim: its callers only compare it with 0 and with attempts >= 1"
    ),
    ("xprun.store", "_claim_number: 1 -> 2 #2"): (
        "-2 for a name that is no claim: its callers only compare it with 0 and with attempts >= 1"
    ),
    ("xprun.store", "read_record: 0 -> 1"): (
        "the default attempt of a record without one only feeds the check, which 0 and 1 pass"
    ),
    (
        "xprun.store",
        "fsync_dir: os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0) -> "
        "os.O_RDONLY & getattr(os, 'O_DIRECTORY', 0)",
    ): "fsync_dir is only given directories, which Linux opens read-only either way",
    ("xprun.store", "Claim._create_exclusive: return False -> return None"): (
        "its only caller tests the result for truth (if not claim._create_exclusive(...))"
    ),
    ("xprun.store", "_pid_alive: return False -> return None"): (
        "its only caller tests the result for truth (not _pid_alive(pid))"
    ),
    ("xprun.store", "_read_claim: False -> True"): (
        "a link then passes is_file but its open fails (O_NOFOLLOW): no owner either way"
    ),
    ("xprun.store", "fsync_dir: 0 -> 1"): "O_DIRECTORY exists on Linux: the default is unused",
    ("xprun.store", "read_regular: 1 -> 2"): "the size of the chunks read: same bytes",
    ("xprun.store", "Heartbeat: True -> False"): _FROZEN,
    ("xprun.runner", "xprun_run_protocol: True -> False"): _LAST_ANYWAY,
    (
        "xprun.runner",
        "xprun_run_skip: state.status == Status.RUNNING -> state.status != Status.RUNNING",
    ): _CLAIM_SEES_IT,
    ("xprun.runner", "xprun_run_skip: state.owner is not None -> state.owner is None"): (
        _CLAIM_SEES_IT
    ),
    ("xprun.identity", "ParamIdentity: True -> False"): _FROZEN,
    ("xprun.runner", "_set_aside: 0 -> 1"): (
        "the default attempt of a record without one: start_record always writes it"
    ),
    ("xprun.runner", "_recover: 1 -> 2"): (
        "the default attempt of a record without one: start_record always writes it, and the "
        "recovered record keeps the record's own fields"
    ),
    ("xprun.runner", "xprun_run_skip: True -> False"): _LAST_ANYWAY,
    ("xprun.runner", "_execute: False -> True"): (
        "the default of new=: its only caller passes it (new=acquired.new)"
    ),
    ("xprun.runner", "xprun_run_setup: True -> False"): _LAST_ANYWAY,
    ("xprun.runner", "xprun_run_call: True -> False"): _LAST_ANYWAY,
    ("xprun.runner", "xprun_run_teardown: True -> False #2"): _LAST_ANYWAY,
    (
        "xprun.runner",
        "xprun_run_skip: state.status == Status.RUNNING and state.owner is not None -> "
        "state.status == Status.RUNNING or state.owner is not None",
    ): "read_state sets an owner only with status running: the two tests agree",
    (
        "xprun.runner",
        "xprun_run_skip: return _elsewhere_report(context, run, state.owner) -> return None",
    ): _CLAIM_SEES_IT,
    ("xprun.store", "ClaimInfo: True -> False"): _FROZEN,
    (
        "xprun.reader.index",
        "_in_run_order_table: 'experiment' not in names or 'hash' not in names -> "
        "'experiment' not in names and 'hash' not in names",
    ): "every readable row has both columns: a table holds both or neither",
    (
        "xprun.reader.index",
        "Index._look_at_unsettled: not found.trusted or not len(frame) -> "
        "not found.trusted and (not len(frame))",
    ): "an empty frame gives empty masks and nothing to stat either way",
    (
        "xprun.reader.index",
        "list_experiment: os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC -> "
        "(os.O_RDONLY | os.O_DIRECTORY) & os.O_CLOEXEC",
    ): "opening a folder read-only needs neither flag: scan reaches it only for folders",
    (
        "xprun.reader.index",
        "list_experiment: os.O_RDONLY | os.O_DIRECTORY -> os.O_RDONLY & os.O_DIRECTORY",
    ): "opening a folder read-only needs neither flag: scan reaches it only for folders",
    (
        "xprun.reader.index",
        "Index._read_rows: blocks_read() - blocks > _COLD_BLOCKS * len(chunk) -> "
        "blocks_read() - blocks >= _COLD_BLOCKS * len(chunk)",
    ): _COLD_SCALE,
    (
        "xprun.reader.index",
        "Index._read_rows: _COLD_BLOCKS * len(chunk) -> _COLD_BLOCKS / len(chunk)",
    ): _COLD_SCALE,
    ("xprun.reader.prefetch", "<module>: 16 -> 17"): _TUNING,
    ("xprun.reader.prefetch", "<module>: 4096 -> 4097"): _TUNING,
    ("xprun.reader.prefetch", "<module>: 1 << 20 -> 1 >> 20"): _TUNING,
    ("xprun.reader.prefetch", "<module>: 1 -> 2"): _TUNING,
    ("xprun.reader.prefetch", "<module>: 20 -> 21"): _TUNING,
    ("xprun.reader.prefetch", "Prefetcher.send: self._fd < 0 -> self._fd <= 0"): (
        "the pipe is descriptor 0 only in a process whose standard input is closed; sending "
        "nothing then is a slower read, never other rows"
    ),
    ("xprun.reader.prefetch", "Prefetcher.send: 0 -> 1"): (
        "pieces one byte shorter than PIPE_BUF at most: still whole lines, still atomic"
    ),
    ("xprun.reader.prefetch", "Prefetcher.send: 0 -> 1 #3"): (
        "pieces after the first one byte shorter than PIPE_BUF at most: still atomic"
    ),
    ("xprun.reader.prefetch", "Prefetcher.send: 0 -> 1 #2"): (
        "fd < 1 is fd <= 0: see Prefetcher.send: self._fd < 0 -> self._fd <= 0"
    ),
    (
        "xprun.reader.prefetch",
        "Prefetcher.send: size + len(line) > select.PIPE_BUF -> "
        "size + len(line) >= select.PIPE_BUF",
    ): "pieces one byte shorter than PIPE_BUF at most: still whole lines, still atomic",
    (
        "xprun.reader.prefetch",
        "Prefetcher.send: len(line) > select.PIPE_BUF -> len(line) >= select.PIPE_BUF",
    ): "a path of exactly PIPE_BUF - 1 bytes left out: read cold, the same row",
    ("xprun.reader.prefetch", "Prefetcher._write: return False -> return None"): (
        "its caller tests it for truth"
    ),
    ("xprun.reader.prefetch", "Prefetcher._write: False -> True"): (
        "later pieces of a batch are tried after one did not fit: which folders are warmed, "
        "never which rows are read"
    ),
    ("xprun.reader.prefetch", "Prefetcher.close: 1 -> 2"): "a closed helper's fd: -1 or -2, < 0",
    (
        "xprun.reader.index",
        "Index._trust: mtime_ns < self.scanned_ns - RACY_NS -> "
        "mtime_ns <= self.scanned_ns - RACY_NS",
    ): "a folder modified exactly 2 s to the nanosecond before the scan: no test can time it",
    ("xprun.reader.index", "list_experiment: 0 -> 1"): (
        "the times of a folder that cannot be listed: its damage row is read again every time"
    ),
    ("xprun.reader.index", "list_experiment: 0 -> 1 #2"): (
        "the times of a folder that cannot be listed: its damage row is read again every time"
    ),
    ("xprun.store", "Acquired: True -> False"): _FROZEN,
    ("xprun.store", "RunState: True -> False"): _FROZEN,
    ("xprun.reader.query", "Token: True -> False"): _FROZEN,
    ("xprun.reader.query", "Query.referenced_keys.walk: 1 -> 2 #3"): (
        "the position of a key (node[-1] read as node[-2]): no caller reads it (the Reader "
        "takes the keys; an unknown key's error finds it in the text)"
    ),
    ("xprun.reader.query", "_read_string: 1 -> 2 #3"): (
        "a backslash second to last leaves no room for a closing quote after the character it "
        "escapes: 'unterminated string' at the same column either way"
    ),
    ("xprun.keyword", "Token: True -> False"): _FROZEN,
    ("xprun.keyword", "_Item: True -> False"): (
        f"{_FROZEN}; nor hashes an _Item (lru_cache hashes the identifier, not the result)"
    ),
    ("xprun.keyword", "_Parser.expect: return token -> return None"): (
        "no caller uses the token expect returns (it is called for its check)"
    ),
    ("xprun.keyword", "_item: 1024 -> 1025"): "the size of a cache: same results",
    ("xprun.keyword", "_equals: return False -> return None"): (
        "its only caller tests the result for truth (... and _equals(item, value))"
    ),
    ("xprun.hydracompat", "<module>: '\\x00xprun-volatile:' -> 'XX\\x00xprun-volatile:XX'"): (
        "the marker put in place of a volatile text: any text no config holds does"
    ),
    ("xprun.hydracompat", "Deferred.resolve: True -> False #2"): (
        "throw_on_missing: Deferred.make resolved the same config with it, so a missing value "
        "(???) raised there first"
    ),
    ("xprun.hydracompat", "_restore: True -> False"): _SAME_LENGTH,
    ("xprun.hydracompat", "hydra_sources: False -> True"): (
        "resolve= of hydra.runtime.choices, which holds group names, never an interpolation"
    ),
    (
        "xprun.hydracompat",
        "hydra_sources: entry.parent and entry.parent != '<root>' -> "
        "entry.parent or entry.parent != '<root>'",
    ): (
        "the only entries without a parent or with parent <root> are the primary config "
        "(shown before) and hydra/config (left out before)"
    ),
    ("xprun.history", "_stepwise: i >= first -> i > first"): (
        "the run at first failed last time, so states[first] != 'complete' keeps it either way"
    ),
    ("xprun.history", "_count: 1 -> 2"): (
        "-1 or -2 for text that is no number: value < 0 refuses both"
    ),
    ("xprun.history", "_say: 0 -> 1 #2"): (
        "the verbosity of a reporter without one: 0 and 1 both print (>= 0)"
    ),
    ("xprun.history", "_keep: True -> False"): _SAME_LENGTH,
    ("xprun.history", "_keep: True -> False #2"): _SAME_LENGTH,
    ("xprun.history", "_keep: True -> False #3"): _SAME_LENGTH,
    ("xprun.markers", "<module>: '\\x00-m' -> 'XX\\x00-mXX'"): (
        "the stand-in for -m given alone (argparse's const): no word a user types holds a NUL, "
        "with or without the XX"
    ),
    ("xprun.markers", "registered: 1 -> 2"): _FIRST_PART,
    ("xprun.markers", "registered: 1 -> 2 #2"): _FIRST_PART,
    ("xprun.skipping", "Xfail: True -> False"): _FROZEN,
    ("xprun.skipping", "_problem: False -> True"): (
        "the default of strict= when it is not given: True and False both pass the check"
    ),
    ("xprun.reader.metrics", "_integral: return False -> return None"): (
        "only a boolean, never missing, gets it; pandas reads None as False in ok.astype(bool) "
        "and in ok | isna() (False there)"
    ),
    ("xprun.reader.metrics", "_number: return math.nan -> return None"): (
        "its results go through pd.to_numeric, which reads None as NaN"
    ),
    ("xprun.reader.metrics", "_checked: not is_bool_dtype(values) -> is_bool_dtype(values)"): (
        "no column is both of integer and of bool dtype: integer columns then take the "
        "per-value check, which accepts their values and gives the same numbers (slower)"
    ),
    ("xprun.reader.metrics", "_number: value > 0 -> value >= 0"): (
        "only integers outside int64 reach the comparison, never 0"
    ),
    ("xprun.reader.metrics", "_number: 0 -> 1"): (
        "only integers outside int64 reach the comparison, never 0 or 1"
    ),
    ("xprun.reader.metrics", "long_frame: False -> True #2"): (
        "sort= of the merge's groupby: the frame is sorted by hash and step right after"
    ),
    ("xprun.reader.metrics", "long_frame: False -> True #4"): (
        "sort= of a groupby's transform, whose result is aligned to the frame's rows either way"
    ),
    ("xprun.reader.metrics", "aggregate: False -> True"): (
        "the order of the table's rows: its only caller merges it by its hash index "
        "(reader/runs.py)"
    ),
    ("xprun.codedigest", "<module>: 2000000000 -> 2000000001"): (
        "the racy window one nanosecond longer: no test can place a modification time there "
        "without a stopwatch"
    ),
    (
        "xprun.codedigest",
        "_read: time.time_ns() - info.st_mtime_ns < _RACY_NS -> "
        "time.time_ns() - info.st_mtime_ns <= _RACY_NS",
    ): "the racy window's last nanosecond: no test can place a modification time there",
    ("xprun.codedigest", "<module>: 65536 -> 65537"): "the size of a cache: same results",
    ("xprun.codedigest", "_read: len(_files) >= _FILES_MAX -> len(_files) > _FILES_MAX"): (
        "the size of a cache: same results"
    ),
    ("xprun.codedigest", "_Resolver.project: return False -> return None"): _TRUTH,
    ("xprun.codedigest", "_Resolver.project: return False -> return None #2"): _TRUTH,
    ("xprun.codedigest", "_imports_only_xprun: return False -> return None"): _TRUTH,
    ("xprun.study", "trial_records: True -> False #2"): f"{_SAME_LENGTH}: columns of one frame",
    ("xprun.study", "trial_records: True -> False #3"): f"{_SAME_LENGTH}: a column per key",
    ("xprun.codedigest", "_Resolver.module: return self._known[name] -> return None"): (
        "a name asked again: its file was added to the code the first time (the memo only "
        "saves the lookup)"
    ),
    ("xprun.codedigest", "_dump: continue -> break"): (
        "on Python 3.11 the skipped fields (kind, type_comment) are each node's last: nothing "
        "follows them to skip (3.12 puts type_params after FunctionDef's type_comment)"
    ),
    (
        "xprun.codedigest",
        "_Resolver.__init__: folder.is_relative_to(rootdir) and self.project(folder) a... -> "
        "folder.is_relative_to(rootdir) or self.project(folder) or...",
    ): (
        "a folder outside the project (or twice) among the roots: _file refuses every file "
        "found there, and the lookup goes on to the next folder"
    ),
    ("xprun.trash", "delete: sys.version_info >= (3, 12) -> sys.version_info > (3, 12)"): (
        "sys.version_info is longer than (3, 12): every 3.12 compares greater than it too"
    ),
    ("xprun.trash", "delete: 3 -> 4"): _ONERROR,
    ("xprun.trash", "delete: 12 -> 13"): _ONERROR,
    ("xprun.reader.query", "Query: True -> False"): (
        f"{_FROZEN}; nor hashes a Query (the only other thing frozen=True changes)"
    ),
    ("xprun.runner", "_execute: run_dir is None -> run_dir is not None"): (
        "its one caller, _claimed, always passes run_dir, which is run.run_dir: the same path"
    ),
    ("xprun.runner", "run_protocol: False -> True"): (
        "again's first value: it is read only after the assignment in the try (an exception "
        "before it propagates, and the finally reads only hold)"
    ),
    ("xprun.store", "_newest_claim: return -1 -> return None"): (
        "an unreadable folder: holds() compares with its attempt (-1 and None both differ), "
        "and acquire lists a folder it has just written its claim into"
    ),
    ("xprun.store", "_newest_claim: 1 -> 2"): "any value below every attempt (>= 1) means none",
    ("xprun.store", "_newest_claim: 1 -> 2 #2"): "any value below every attempt (>= 1) means none",
    ("xprun.store", "acquire: True -> False"): (
        "unlink(missing_ok=False) of a stale claim already gone raises FileNotFoundError, "
        "which the OSError handler around it passes"
    ),
    ("xprun.store", "is_complete_record: 0 -> 1"): (
        "the default of a missing attempt: 0 and 1 both pass the int and >= 0 checks"
    ),
    ("xprun.store", "read_regular_stat: 1 -> 2"): "the read's chunk size: a file is read whole",
    ("xprun.store", "read_regular_stat: 20 -> 21"): "the read's chunk size: a file is read whole",
    ("xprun.store", "Claim._create_exclusive: 1 -> 2"): (
        "the descriptor's sentinel before open: any negative number"
    ),
    ("xprun.store", "Claim._create_exclusive: fd >= 0 -> fd > 0"): _S_FD,
    ("xprun.store", "Claim._create_exclusive: 0 -> 1"): _S_FD,
    ("xprun.store", "Claim._abandon: fd >= 0 -> fd > 0"): _S_FD,
    ("xprun.store", "Claim._abandon: 0 -> 1"): _S_FD,
    ("xprun.readonlyconfig", "<module>: 'leaf' -> 'XXleafXX'"): (
        "the marker of a leaf in a shape: any string no container shape equals"
    ),
    ("xprun.readonlyconfig", "<module>: 64 -> 65"): "how many shapes are cached: memory only",
    (
        "xprun.readonlyconfig",
        "readonly_config: len(_templates) >= _MAX_TEMPLATES -> len(_templates) > _MAX_TEMPLATES",
    ): "how many shapes are cached: memory only",
    (
        "xprun.readonlyconfig",
        "<module>: sys.implementation.name == 'cpython' and (not sysconfig.g... -> "
        "sys.implementation.name == 'cpython' or not sysconfig.get...",
    ): "on CPython (the only interpreter the suite runs on) both read the second operand",
    ("xprun.readonlyconfig", "_Spare.unreachable: return False -> return None"): _TRUTH,
    ("xprun.readonlyconfig", "_Spare.unreachable: return False -> return None #2"): _TRUTH,
    ("xprun.readonlyconfig", "_Spare.unreachable: return False -> return None #3"): _TRUTH,
    ("xprun.readonlyconfig", "_Spare.unreachable: return False -> return None #4"): _TRUTH,
    ("xprun.readonlyconfig", "_Spare.unreachable: True -> False #2"): (
        f"{_SAME_LENGTH}: a state per node"
    ),
    ("xprun.readonlyconfig", "_Spare.refill: True -> False"): f"{_SAME_LENGTH}: a node per leaf",
    ("xprun.readonlyconfig", "_Spare.of: True -> False"): (
        f"{_SAME_LENGTH}: the lengths are compared first"
    ),
    ("xprun.journal", "<module>: 256 -> 257"): _J_TUNE,
    ("xprun.journal", "<module>: 1.0 -> 2.0"): _J_TUNE,
    ("xprun.journal", "<module>: 512 -> 513"): _J_TUNE,
    ("xprun.journal", "<module>: 1 -> 2"): _J_TUNE,
    ("xprun.journal", "<module>: 20 -> 21"): _J_TUNE,
    ("xprun.journal", "<module>: 4 -> 5"): _J_TUNE,
    ("xprun.journal", "<module>: 30 -> 31"): _J_TUNE,
    ("xprun.journal", "<module>: c_make_encoder is None -> c_make_encoder is not None"): _J_CENC,
    ("xprun.journal", "_encode: _C_ENCODER is None -> _C_ENCODER is not None"): _J_CENC,
    ("xprun.journal", "_encode: return _ENCODE(value) -> return None"): _J_CENC,
    ("xprun.journal", "<module>: False -> True"): _J_SAMEVALUE,
    ("xprun.journal", "<module>: False -> True #2"): _J_SAMEVALUE,
    ("xprun.journal", "<module>: True -> False"): _J_SAMEVALUE,
    ("xprun.journal", "Writer._code_ref: return code -> return None"): _J_NONDICT,
    ("xprun.journal", "Writer._code_ref: return {'ref': known[1]} -> return None"): _J_CACHE,
    (
        "xprun.journal",
        "Writer._code_ref: len(self._codes) < 1024 -> len(self._codes) <= 1024",
    ): _J_CACHE,
    (
        "xprun.journal",
        "Writer.flush: self._failed or not pending -> self._failed and (not pending)",
    ): _J_FAILED,
    ("xprun.journal", "Writer._line: len(line) <= MAX_LINE -> len(line) < MAX_LINE"): _J_TUNE,
    (
        "xprun.journal",
        "Writer._code_text: type(code) is dict and len(self._code_texts) < 1024 -> "
        "type(code) is dict or len(self._code_texts) < 1024",
    ): _J_CACHE,
    ("xprun.journal", "Writer.close: self._fd >= 0 -> self._fd > 0"): _J_NEG_FD,
    ("xprun.journal", "Writer.forget: self._fd >= 0 -> self._fd > 0"): _J_NEG_FD,
    (
        "xprun.journal",
        "Entry.parse: type(parsed) is not list or len(parsed) != 4 -> "
        "type(parsed) is not list and len(parsed) != 4",
    ): _J_UNPACK,
    ("xprun.journal", "<module>: False -> True #3"): _J_SAMEVALUE,
    ("xprun.journal", "_encode: 0 -> 1"): _J_CENC,
    (
        "xprun.journal",
        "<module>: name not in _SHARED and name != 'code' -> name not in _SHARED or name != 'code'",
    ): _J_DUPKEYS,
    ("xprun.journal", "Writer.__init__: 1 -> 2"): _J_NEG_FD,
    ("xprun.journal", "Writer._code_ref: known[0] is code -> known[0] is not code"): _J_CACHE,
    ("xprun.journal", "Writer._code_ref: 1024 -> 1025"): _J_CACHE,
    (
        "xprun.journal",
        "Writer.append: time.monotonic() - self._since >= _FLUSH_AFTER -> "
        "time.monotonic() - self._since > _FLUSH_AFTER",
    ): _J_TUNE,
    ("xprun.journal", "Writer.flush: self._fd < 0 -> self._fd <= 0"): _J_NEG_FD,
    ("xprun.journal", "Writer._code_text: known[0] is code -> known[0] is not code"): _J_CACHE,
    ("xprun.journal", "Writer._code_text: type(code) is dict -> type(code) is not dict"): _J_CACHE,
    (
        "xprun.journal",
        "Writer._code_text: len(self._code_texts) < 1024 -> len(self._code_texts) <= 1024",
    ): _J_CACHE,
    (
        "xprun.journal",
        "Writer._shared: len(self._shared_texts) >= 64 -> len(self._shared_texts) > 64",
    ): _J_CACHE,
    ("xprun.journal", "Writer.close: 0 -> 1"): _J_NEG_FD,
    ("xprun.journal", "Writer.forget: 0 -> 1"): _J_NEG_FD,
    ("xprun.journal", "_File.code: type(key) is str -> type(key) is not str"): _J_PARSEDCACHE,
    ("xprun.journal", "Writer.flush: 0 -> 1"): _J_NEG_FD,
    ("xprun.journal", "Writer._code_text: 1024 -> 1025"): _J_CACHE,
    ("xprun.journal", "Writer._shared: 64 -> 65"): _J_CACHE,
    ("xprun.journal", "Writer.close: 1 -> 2"): _J_NEG_FD,
    ("xprun.journal", "Writer.forget: 1 -> 2"): _J_NEG_FD,
    ("xprun.journal", "writer: True -> False"): _J_FORKLIST,
    ("xprun.journal", "Writer._code_ref: 0 -> 1"): _J_CACHE,
    ("xprun.journal", "Writer._code_ref: 1 -> 2"): _J_CACHE,
    ("xprun.journal", "Writer._code_text: 0 -> 1"): _J_CACHE,
    ("xprun.journal", "parse_all: True -> False"): _J_STRICT,
    ("xprun.journal", "Writer._shared: True -> False"): _J_STRICT,
    ("xprun.store", "_new_token: 1 -> 2"): "a count by twos is as unique as a count by ones",
    ("xprun.store", "_new_token: 0 -> 1"): "where the count starts: each token still unique",
    ("xprun.store", "_make_run_dir: True -> False #3"): (
        "exist_ok of the experiment folder's mkdir, made only when the run's mkdir found it "
        "missing: only a concurrent launcher making it in between tells them apart"
    ),
    (
        "xprun.completion_summary",
        "_journal_lines: len(names) < _JOURNAL_FROM -> len(names) <= _JOURNAL_FROM",
    ): "the threshold of reading the journal: how, not what",
    ("xprun.journal", "record_of: 2 -> 3"): (
        "where the search for the signature's end starts: it lies after the first number"
    ),
    ("xprun.journal", "about_folder: start > 0 -> start >= 0"): _J_FIND,
    ("xprun.journal", "about_folder: end > 0 -> end >= 0"): _J_FIND,
    ("xprun.journal", "about_folder: 0 -> 1"): _J_FIND,
    ("xprun.journal", "about_folder: 0 -> 1 #2"): _J_FIND,
    ("xprun.journal", "_read_lines: end < 0 -> end <= 0"): _J_FIND,
    ("xprun.journal", "_read_lines: 0 -> 1"): _J_FIND,
    ("xprun.journal", "Entry.intact: 16 -> 17 #2"): (
        "the checksum's slice taking the space after it: int() strips whitespace"
    ),
}


# -- mutants -----------------------------------------------------------------------------------

_SWAPS: dict[type, type] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.And: ast.Or,
    ast.Or: ast.And,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}


@dataclass(frozen=True)
class Mutant:
    ident: str  # "<function>: <original> -> <mutant>", stable across unrelated edits
    line: int
    tree: ast.Module
    lines: range = range(0)  # the lines of what changed (of an if or while: its condition)


def _unparse(node: ast.AST) -> str:
    if isinstance(node, (ast.If, ast.While)):  # the condition, not the whole block
        node = node.test
        text = f"if {ast.unparse(node)}"
    else:
        text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def _skipped(tree: ast.Module) -> set[int]:
    """Nodes never mutated: docstrings, annotations, ``if TYPE_CHECKING`` blocks, f-strings."""
    skip: set[int] = set()

    def skip_all(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", 0), str):
            skip_all(first)
        if isinstance(node, ast.arg):
            skip_all(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            skip_all(node.returns)
        elif isinstance(node, ast.AnnAssign):
            skip_all(node.annotation)
        elif isinstance(node, ast.JoinedStr) or (
            isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        ):
            skip_all(node)
    return skip


def _replacements(node: ast.AST, module_level_strings: set[int]) -> Iterator[ast.AST]:
    """The mutated copies of ``node`` (each differing from it in one place)."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _SWAPS:
                new = copy.deepcopy(node)
                new.ops[i] = _SWAPS[type(op)]()
                yield new
    elif isinstance(node, (ast.BoolOp, ast.BinOp, ast.AugAssign)) and type(node.op) in _SWAPS:
        new = copy.deepcopy(node)
        new.op = _SWAPS[type(node.op)]()
        yield new
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield copy.deepcopy(node.operand)
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield ast.Constant(not value)
        elif isinstance(value, (int, float)):
            yield ast.Constant(value + 1)
        elif isinstance(value, str) and id(node) in module_level_strings:
            yield ast.Constant(f"XX{value}XX")
    elif isinstance(node, (ast.If, ast.While, ast.IfExp)) and not isinstance(
        node.test, (ast.Compare, ast.BoolOp, ast.UnaryOp)
    ):
        new = copy.deepcopy(node)
        new.test = ast.UnaryOp(ast.Not(), new.test)
        yield new
    elif isinstance(node, ast.Break):
        yield ast.Continue()
    elif isinstance(node, ast.Continue):
        yield ast.Break()
    elif isinstance(node, ast.Return) and node.value is not None and not _is_none(node.value):
        yield ast.Return(ast.Constant(None))


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def mutants(source: str) -> list[Mutant]:
    """Every mutant of ``source``, each with a readable id."""
    tree = ast.parse(source)
    skip = _skipped(tree)
    module_level_strings = {
        id(stmt.value)
        for stmt in tree.body
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)
    }
    owners: dict[int, str] = {}

    def scope(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = name
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = f"{name}.{child.name}" if name else child.name
            owners[id(child)] = inner or "<module>"
            scope(child, inner)

    scope(tree, "")
    found: list[Mutant] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        for replacement in _replacements(node, module_level_strings):
            where = owners.get(id(node), "<module>")
            ident = f"{where}: {_unparse(node)} -> {_unparse(replacement)}"
            seen[ident] = seen.get(ident, 0) + 1
            if seen[ident] > 1:
                ident += f" #{seen[ident]}"
            changed = node.test if isinstance(node, (ast.If, ast.While)) else node
            first = getattr(changed, "lineno", 0)
            span = range(first, (getattr(changed, "end_lineno", None) or first) + 1)
            found.append(Mutant(ident, first, _replace(tree, index, replacement), span))
    return found


def _replace(tree: ast.Module, index: int, replacement: ast.AST) -> ast.Module:
    """A copy of ``tree`` with its ``index``-th node (in ``ast.walk`` order) replaced."""
    new_tree = copy.deepcopy(tree)
    target = list(ast.walk(new_tree))[index]
    for parent in ast.walk(new_tree):
        for field, value in ast.iter_fields(parent):
            if value is target:
                setattr(parent, field, replacement)
            elif isinstance(value, list) and any(v is target for v in value):
                value[[v is target for v in value].index(True)] = replacement
    ast.copy_location(replacement, target)
    ast.fix_missing_locations(new_tree)
    return new_tree


# -- running the tests against a mutant ----------------------------------------------------------


class _Serve(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """An import hook serving compiled code for one module name (the mutant)."""

    def __init__(self, name: str, origin: str, code: object) -> None:
        self.name, self.origin, self.code = name, origin, code

    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.origin, loader=self)

    def create_module(self, spec):  # type: ignore[no-untyped-def]
        return None

    def exec_module(self, module):  # type: ignore[no-untyped-def]
        exec(self.code, module.__dict__)


class _OnlyInProcess:
    """A pytest plugin deselecting the tests that run xprun in a subprocess, which would
    import the original module: those whose code calls ``project.run``, ``project.popen``,
    ``python -m xprun`` or starts ``multiprocessing`` processes.  Tests with ``project``
    that call ``xprun.main`` in-process are kept, and so are those whose ``project.run``
    launches in the test's process (the ``inprocess`` mark, tests/launch.py; a launch that
    still needs a process of its own runs the original module, so it can only miss a
    mutant, never kill one wrongly).  With ``keep``, only the tests it names are run (those
    that ran the mutated lines)."""

    _SUBPROCESS = ("project.run(", "project.popen(", '"-m", "xprun"', "multiprocessing.")
    _ALWAYS_SUBPROCESS = ("project.popen(", '"-m", "xprun"', "multiprocessing.")

    def __init__(self, keep: frozenset[str] | None = None) -> None:
        self.keep = keep

    def pytest_collection_modifyitems(self, config, items):  # type: ignore[no-untyped-def]
        import inspect

        kept, dropped = [], []
        for item in items:
            try:
                source = inspect.getsource(item.function)
            except (AttributeError, OSError, TypeError):
                source = ""
            from conftest import launches_inprocess

            markers = self._ALWAYS_SUBPROCESS if launches_inprocess(item) else self._SUBPROCESS
            spawns = any(marker in source for marker in markers)
            unused = self.keep is not None and item.nodeid not in self.keep
            (dropped if spawns or unused else kept).append(item)
        # Property tests last: they try hundreds of inputs, and with -x a mutant the example
        # tests kill (most of them) never gets there.
        kept.sort(key=lambda item: bool(getattr(item.obj, "is_hypothesis_test", False)))
        items[:] = kept
        config.hook.pytest_deselected(items=dropped)


class _LinesRun:
    """A pytest plugin recording which lines of one file each test runs (coverage.py, one
    context per test; lines run outside any test, such as at import, have the context "")."""

    def __init__(self, origin: str) -> None:
        import coverage

        self.origin = origin
        self.coverage = coverage.Coverage(data_file=None, config_file=False, include=[origin])

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):  # type: ignore[no-untyped-def]
        self.coverage.switch_context(item.nodeid)
        yield
        self.coverage.switch_context("")

    def save(self, path: str) -> None:
        self.coverage.stop()
        found = self.coverage.get_data().contexts_by_lineno(self.origin)
        Path(path).write_text(json.dumps(found))


#: Plugins a mutant's run does without (parallel workers, benchmarks, the cache): each
#: costs start-up time in every child.
_NOT_NEEDED = ("-p", "no:xdist", "-p", "no:benchmark", "-p", "no:cacheprovider")


def _run_tests(
    module: str,
    origin: str,
    tree: ast.Module | None,
    timeout: float,
    keep: frozenset[str] | None = None,
    record: str | None = None,
) -> str:
    """``killed``, ``survived`` or ``timeout``: the tests of ``module`` run on the mutant
    (only those in ``keep`` when given).  ``record``: a file where the lines each test ran
    are written (the run without a mutant)."""
    pid = os.fork()
    if pid == 0:  # the child: serve the mutant, run the tests, exit with pytest's code
        code = 70
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as a test process has it
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            for name in [m for m in sys.modules if m == "xprun" or m.startswith("xprun.")]:
                del sys.modules[name]
            if tree is not None:
                sys.meta_path.insert(0, _Serve(module, origin, compile(tree, origin, "exec")))
            plugins: list[object] = [_OnlyInProcess(keep)]
            if record is not None:
                lines_run = _LinesRun(origin)
                plugins.append(lines_run)
                lines_run.coverage.start()  # before the tests import the module
                # Imported here, outside any test: a module the tests import lazily (inside
                # xprun.main) would otherwise have its import-time lines (constants,
                # decorators) credited to the first test that imported it, and a mutant of
                # them given that test alone.
                importlib.import_module(module)
            files = TESTS[module]
            if keep is not None:  # only the files holding those tests are collected
                files = [f for f in files if any(t.startswith(f + "::") for t in keep)]
            args = ["-x", "-q", "-o", "addopts=", *_NOT_NEEDED, *files]
            code = int(pytest.main(args, plugins=plugins))
            if record is not None:
                lines_run.save(record)
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pid = 0
                code = os.waitstatus_to_exitcode(status)
                if code in (4, 5):  # pytest's usage error, no tests: the tool's fault
                    raise SystemExit(f"{module}: pytest exited {code} (no tests run): fix TESTS")
                return "survived" if code == 0 else "killed"
            time.sleep(0.05)
    finally:
        if pid:  # out of time, or interrupted: the child must not run on alone
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return "timeout"


def _source_of(module: str) -> str:
    """The file of ``module``, found without importing it (nor ``xprun``): each child must
    import it afresh, the mutant in its place."""
    return str(ROOT / (module.replace(".", "/") + ".py"))


def _tests_of(mutant: Mutant, ran: dict[int, set[str]]) -> frozenset[str] | None:
    """The tests that ran the mutated lines: no other test can see the change.  None (all of
    them) when the lines ran outside any test (at import: a constant, a default, a decorator)
    or in none (the survivor is then confirmed by every test)."""
    tests = set().union(*(ran.get(line, set()) for line in mutant.lines))
    return None if not tests or "" in tests else frozenset(tests)


def score(module: str, show: bool, only: list[str] | None = None) -> tuple[int, int, list[str]]:
    """(killed, scored, survivors) for ``module``; equivalent mutants are not scored.
    ``only``: just the mutants whose id contains one of these texts (to check a new test
    against them, or to measure some functions of a large module)."""
    origin = _source_of(module)
    source = Path(origin).read_text()  # read once: the mutants' lines are this text's
    found = mutants(source)
    stale = {i for m, i in EQUIVALENT if m == module} - {mutant.ident for mutant in found}
    for ident in sorted(stale):
        print(f"  listed as equivalent but no longer generated (update EQUIVALENT): {ident}")
    if only is not None:
        found = [mutant for mutant in found if any(text in mutant.ident for text in only)]
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        record = os.path.join(scratch, "lines.json")
        original = ast.parse(source)  # served too, should the file change meanwhile
        if _run_tests(module, origin, original, timeout=1800, record=record) != "survived":
            raise SystemExit(f"{module}: its tests fail without any mutation; fix them first")
        ran = {
            int(line): set(tests) for line, tests in json.loads(Path(record).read_text()).items()
        }
    timeout = 3 * (time.monotonic() - started) + 10
    killed, scored, survivors = 0, 0, []
    total = sum(1 for m in found if (module, m.ident) not in EQUIVALENT)
    try:
        for mutant in found:
            if (module, mutant.ident) in EQUIVALENT:
                continue
            result = _run_tests(module, origin, mutant.tree, timeout, _tests_of(mutant, ran))
            scored += 1
            if result == "survived":
                survivors.append(f"line {mutant.line}: {mutant.ident}")
                if show:
                    print(f"  [{scored}/{total}] survived  line {mutant.line}: {mutant.ident}")
            else:
                killed += 1
            if show and scored % 20 == 0:  # a long run shows it is moving
                print(f"  [{scored}/{total}] {killed} killed so far")
            sys.stdout.flush()
    except KeyboardInterrupt:  # a partial score is still a figure: say how partial
        print(f"  interrupted after {scored} of {total} mutants")
    return killed, scored, survivors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(TESTS)}")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not list the survivors")
    parser.add_argument(
        "--only",
        metavar="TEXT",
        action="append",
        help="run only the mutants whose id (as --list prints it) contains TEXT (repeat it: "
        "any of them); no floor",
    )
    options = parser.parse_args(argv)
    unknown = [m for m in options.modules if m not in TESTS]
    if unknown:
        parser.error(f"no tests are assigned to {', '.join(unknown)}; choose from {list(TESTS)}")
    # Stopped by `kill` (or Ctrl-C in a background job, where SIGINT is ignored): the partial
    # score is printed, and the running child is killed, not left running on its own.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(ROOT)
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this tree's xprun, even run from a copy
    # Imported once here, before forking, so each mutant's run starts warm (but not xprun
    # itself, which each child imports afresh, mutant included).
    for heavy in ("pytest", "hypothesis", "pandas", "omegaconf", "hydra", "pluggy", "git"):
        try:
            __import__(heavy)
        except ImportError:
            pass
    below = []
    for module in options.modules or list(TESTS):
        if options.list:
            for mutant in mutants(Path(_source_of(module)).read_text()):
                if options.only is None or any(t in mutant.ident for t in options.only):
                    print(f"{module} line {mutant.line}: {mutant.ident}")
            continue
        print(f"{module}:", flush=True)
        killed, scored, _ = score(module, show=not options.quiet, only=options.only)
        percent = 100.0 * killed / scored if scored else 100.0
        excluded = sum(1 for m, _ in EQUIVALENT if m == module)
        print(f"{module}: {killed}/{scored} killed, {percent:.1f}% ({excluded} equivalent)")
        if options.only is None and percent < FLOORS.get(module, 0.0):
            below.append(module)
    if below:
        print(f"below the floor: {', '.join(below)}")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
