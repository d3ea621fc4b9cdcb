"""What counts as a code change, and which files are the experiment's code
(``xprun.codedigest``): each rule checked where mutation testing (tools/mutation.py) found it
unchecked.  The staleness tests (tests/test_i13_stale.py) run ``python -m xprun``, which a
mutant does not reach, and its unit tests check the digests; these check the rest.
"""

from __future__ import annotations

import os
import time

from xprun import codedigest


def test_i13_mut_codedigest_the_digest_names_its_algorithm_and_functions_their_module():
    digest = codedigest.code_digest({"a.py": "0" * 32})
    assert digest.startswith("xxh3_128:") and len(digest) == len("xxh3_128:") + 32
    assert "<module>" in codedigest.function_digests("x = 1\ndef f(): pass\n")


def test_i13_mut_codedigest_a_file_older_than_the_racy_window_is_read_and_cached(tmp_path):
    path = tmp_path / "old.py"
    path.write_text("x = 1\n")
    hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(hour_ago, hour_ago))
    assert codedigest.file_digest(path) == codedigest.source_digest("x = 1\n")
    # Cached by path, size and modification time, as git's index is: an edit that keeps all
    # three (made here on purpose) is not seen, which is why a file changed in the last two
    # seconds is never cached (tests/test_i13_stale.py checks that one).
    path.write_text("x = 2\n")
    os.utime(path, ns=(hour_ago, hour_ago))
    assert codedigest.file_digest(path) == codedigest.source_digest("x = 1\n")
    os.utime(path, ns=(hour_ago + 1, hour_ago + 1))
    assert codedigest.file_digest(path) == codedigest.source_digest("x = 2\n")


def test_i13_mut_codedigest_a_file_larger_than_16_mib_is_not_read(tmp_path):
    limit = 16 * 1024 * 1024
    big = tmp_path / "big.py"
    with open(big, "wb") as file:  # sparse: the size is what is checked, before any read
        file.truncate(limit + 1)
    assert codedigest.file_digest(big) is None
    with open(big, "r+b") as file:
        file.truncate(limit)  # the limit itself is read (NUL bytes: digested by its bytes)
    assert codedigest.file_digest(big) == codedigest.source_digest(b"\0" * limit)


def test_i13_mut_codedigest_a_tree_too_deep_to_walk_is_digested_by_its_bytes():
    deep = "x = a" + ".b" * 2000  # parses, but walking it recurses 2,000 levels
    digest = codedigest.source_digest(deep)
    assert isinstance(digest, str) and len(digest) == 32
    assert digest == codedigest.source_digest(deep.encode())
    assert digest != codedigest.source_digest(deep + ".b")  # more code: another digest
    assert digest != codedigest.source_digest(deep + "  # note")  # its bytes decide
    assert codedigest.function_digests(deep) == {}  # as for a file that does not parse


def test_i13_mut_codedigest_a_module_without_a_file_has_no_code(tmp_path):
    from types import ModuleType

    assert codedigest.module_files(ModuleType("made_in_memory"), tmp_path) == []
    code = codedigest.experiment_code(ModuleType("made_in_memory"), tmp_path)
    assert code["files"] == {} and code["digest"] == codedigest.code_digest({})
