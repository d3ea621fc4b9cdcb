"""Bringing run files into the page cache ahead of the Reader, in a helper process.

A cold index reads three small files per run; on a cold page cache each read waits on the
disk, one after the other.  Threads in the reading process would overlap the waits, but every
system call gives up Python's lock and takes it back, and the parsing holds it: on a warm
cache 8 reading threads made the index 2.3 times slower and tripled its CPU.  So the rows
are read and parsed by one thread, and a helper process (this file, run as a script with
the standard library only) runs ahead of it: for each run folder it is sent, a few threads
open each file the Reader will read and ask the kernel to read it in
(``posix_fadvise(WILLNEED)``), which also brings in the folder's entries and the files'
inodes.  The helper reads nothing itself and writes nothing; its lock is its own.

The Reader sends the folders a few chunks ahead of the one it reads, through a pipe it
never waits on (a write that does not fit is left out), so the helper stays a bounded
distance ahead whatever the number of runs, and memory is the pipe's.  The Reader's rows do
not depend on the helper in any way: a helper that is slow, fails to start, dies, or is
sent a folder deleted meanwhile only changes how long the reads wait.
"""

from __future__ import annotations

import os
import queue
import select
import stat
import sys
import threading

#: The files of a run folder the Reader reads (``files.claims`` lists the folder itself).
FILES = ("run.json", "config.yaml", "outcome.json")
#: Opens in flight at once in the helper: waits on the disk overlap.
THREADS = 16
#: Folders read from the pipe and not yet warmed, at most.
QUEUED = 4096
#: The pipe's size asked for: a few batches of run folders' paths.
PIPE_SIZE = 1 << 20


def warm(folder: bytes) -> None:
    """Ask the kernel to read ``folder``'s files in, without following any link and without
    opening anything but regular files' contents (a FIFO opens non-blocking, and is left)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        for name in FILES:
            try:
                fd = os.open(
                    name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd
                )
            except OSError:
                continue
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    _advise(fd)
            except OSError:
                pass
            finally:
                os.close(fd)
    finally:
        os.close(dir_fd)


def blocks_read() -> int:
    """Blocks of 512 bytes this thread (this process, where threads are not counted apart)
    has read from the disk so far: what a read from the page cache does not add to."""
    import resource

    who = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    return resource.getrusage(who).ru_inblock


def command() -> list[str]:
    """How the helper is started: this file, by this Python, isolated (no site packages,
    no environment variables, no current folder on its path: the standard library only)."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__)]


class Prefetcher:
    """The helper process, seen from the Reader: :meth:`send` names run folders to warm.

    Nothing it does can fail the Reader: a helper that cannot start, or is gone, makes
    :meth:`send` do nothing; a pipe that is full leaves the rest of a batch out."""

    def __init__(self) -> None:
        import subprocess

        self._fd = -1
        try:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError:
            self._process = None
            return
        assert self._process.stdin is not None
        self._fd = self._process.stdin.fileno()
        os.set_blocking(self._fd, False)
        try:  # room for several batches (Linux; elsewhere the default 64 KiB)
            import fcntl

            fcntl.fcntl(self._fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
        except OSError:
            pass

    def send(self, folders: list[str]) -> None:
        """Name ``folders`` to the helper, in pieces of at most ``PIPE_BUF`` bytes (each
        written whole or not at all); stops at the first piece that does not fit."""
        if self._fd < 0:
            return
        piece: list[bytes] = []
        size = 0
        for folder in folders:
            line = os.fsencode(folder) + b"\n"
            if line.count(b"\n") > 1 or len(line) > select.PIPE_BUF:
                continue  # a name the line protocol cannot carry: read cold
            if size + len(line) > select.PIPE_BUF:
                if not self._write(b"".join(piece)):
                    return
                piece, size = [], 0
            piece.append(line)
            size += len(line)
        if piece:
            self._write(b"".join(piece))

    def _write(self, data: bytes) -> bool:
        try:
            os.write(self._fd, data)
        except OSError:  # full (BlockingIOError), or the helper is gone (BrokenPipeError)
            return False
        return True

    def close(self) -> None:
        """Stop the helper now (what it has not warmed is no longer wanted)."""
        process, self._process, self._fd = self._process, None, -1
        if process is None:
            return
        process.kill()
        try:
            process.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        process.wait()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _advise(fd: int) -> None:
    """Have the kernel read the file in: ``posix_fadvise(WILLNEED)`` starts the read and
    returns; where there is none (macOS), its first bytes are read (records are small)."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    else:
        os.read(fd, 1 << 16)


def _serve(folders: queue.Queue[bytes | None]) -> None:
    while True:
        folder = folders.get()
        if folder is None:
            return
        warm(folder)


def main() -> None:
    """Warm each run folder named on a line of standard input, until it closes.

    One thread reads the lines (threads sharing one buffered reader crawled: a few runs per
    second); it waits when ``QUEUED`` folders are waiting, so the pipe fills and the
    Reader leaves folders out rather than the helper holding them all."""
    folders: queue.Queue[bytes | None] = queue.Queue(QUEUED)
    workers = [threading.Thread(target=_serve, args=(folders,)) for _ in range(THREADS)]
    for worker in workers:
        worker.start()
    for line in sys.stdin.buffer:
        folders.put(line.rstrip(b"\n"))
    for _ in workers:
        folders.put(None)
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
