"""Child processes that take Ctrl-C as they would when started from a terminal.

A shell starts a background job (``pytest &``, CI runners, ``nohup``) with SIGINT ignored, and
an ignored signal stays ignored across ``exec``: Python then installs no ``KeyboardInterrupt``
handler, and a test that sends SIGINT to its xprun waits for an interrupt that never comes.
``project.popen(..., **FOREGROUND)`` gives the child SIGINT's default action back before it
starts, so such tests pass however the suite was launched.
"""

from __future__ import annotations

import signal
from typing import Any


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


#: ``subprocess.Popen`` keyword arguments restoring SIGINT's default action in the child.
FOREGROUND: dict[str, Any] = {"preexec_fn": _default_sigint}
