"""The marker for hook implementations, shared by built-in and third-party plugins."""

import pluggy

hookimpl = pluggy.HookimplMarker("xprun")
