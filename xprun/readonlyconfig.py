"""The ``config`` fixture's read-only ``DictConfig``, made fast without being another object.

**Templates.** ``OmegaConf.create`` validates and wraps every value into a node: ~0.3 ms for
11 keys, more than the rest of a trivial run.  The runs of a sweep share their config's shape
(its keys and containers) and differ in leaf values, and in an untyped config every plain leaf
becomes the same node type (``AnyNode``) holding the value as it is.  So the DictConfig is
built once per shape by ``OmegaConf.create`` itself, with placeholder leaves, and pickled
(OmegaConf supports pickling) with the placeholders left out as persistent ids; a run
unpickles that template with its own leaves put back.  Anything outside plain dicts, lists
and scalars with string keys takes ``OmegaConf.create`` as before.

**Recycling.** Unpickled, a config is still some fifty new objects (nodes, their metadata,
flags and caches), and every node then computes its flags again on first use: with the
allocations' share of garbage collection, about a fifth of a trivial run's cost (issue 11).
Once a run has ended, its config is usually garbage: nothing refers to it any more.  Such a
config is handed to the next run of the same shape with that run's leaves set in it: the same
objects, which no one can tell apart from new ones, since no one can reach them.  "No one can
reach them" is read from CPython's reference counts: those of every object of the config
(nodes, their attribute dicts, metadata, flags, resolver caches, containers) must be exactly
what they were when it was made, with no weak reference to any.  A reference kept anywhere (a
fixture or a list that kept ``config``, a child kept as ``config.model``, a traceback whose
frame holds it, a thread) changes a count; so does a node or a metadata replaced or removed.
What changes no count is compared too: each container's length, each node's attributes, each
metadata's fields and flags.  Any difference, and the old config is left to whoever holds it
and a new one is unpickled.  Only where the counts are exact (CPython with its global lock):
elsewhere every run unpickles.
"""

from __future__ import annotations

import io
import pickle
import sys
import sysconfig
import weakref
from collections.abc import Hashable
from typing import Any

_LEAF = "leaf"  # a plain scalar in a shape
_LEAF_TYPES = frozenset((str, int, float, bool, type(None)))
_MAX_TEMPLATES = 64
_templates: dict[Hashable, bytes | None] = {}  # shape -> pickled template (None: not usable)
_spares: dict[Hashable, _Spare] = {}  # shape -> the last config made for it, to recycle

#: Reference counts are exact: CPython, not its free-threaded build.
RECYCLES = sys.implementation.name == "cpython" and not sysconfig.get_config_var("Py_GIL_DISABLED")


def readonly_config(config: dict[str, Any]) -> Any:
    """``OmegaConf.create(config, flags={"readonly": True})``: for plain data, the last config
    of the same shape refilled if nothing holds it any more, else unpickled from its shape's
    template (the same DictConfig either way, several times faster)."""
    leaves: list[Any] = []
    shape = _shape(config, leaves)
    if shape is not None and type(config) is dict:
        spare = _spares.pop(shape, None)  # atomic: two threads never take the same one
        if spare is not None and spare.unreachable():
            spare.refill(leaves)
            _spares[shape] = spare
            return spare.root
        try:
            data = _templates[shape]
        except KeyError:
            if len(_templates) >= _MAX_TEMPLATES:
                _templates.clear()
                _spares.clear()
            data = _templates[shape] = _template(shape)
        if data is not None:
            made = _LeafUnpickler(data, leaves).load()
            if not RECYCLES:
                return made
            spare = _Spare.of(made, leaves)
            if spare is None:
                return made
            del made
            spare.settle()  # counted here, where nothing but the spare holds the config
            _spares[shape] = spare
            return spare.root
    from omegaconf import OmegaConf

    return OmegaConf.create(config, flags={"readonly": True})


# -- shapes and templates ----------------------------------------------------------------------


def _shape(value: Any, leaves: list[Any]) -> Hashable | None:
    """The keys and containers of ``value`` (its scalars appended to ``leaves`` in order), or
    None when it holds anything the fast path does not cover."""
    kind = type(value)
    if kind in _LEAF_TYPES:
        leaves.append(value)
        return _LEAF
    if kind is dict:
        items = []
        for key, item in value.items():
            if type(key) is not str:
                return None
            shape = _shape(item, leaves)
            if shape is None:
                return None
            items.append((key, shape))
        return (dict, tuple(items))
    if kind is list:
        shapes = []
        for item in value:
            shape = _shape(item, leaves)
            if shape is None:
                return None
            shapes.append(shape)
        return (list, tuple(shapes))
    return None


class _LeafPickler(pickle.Pickler):
    """Pickles a template, each placeholder leaf replaced by its index."""

    def __init__(self, file: io.BytesIO, placeholders: list[str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._placeholders = placeholders
        self._index = {id(p): i for i, p in enumerate(placeholders)}
        self.seen: list[int] = []

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) is str:
            index = self._index.get(id(obj))
            if index is not None and obj is self._placeholders[index]:
                self.seen.append(index)
                return index
        return None


class _LeafUnpickler(pickle.Unpickler):
    """Unpickles a template with a run's leaves in place of the placeholders."""

    def __init__(self, data: bytes, leaves: list[Any]) -> None:
        super().__init__(io.BytesIO(data))
        self._leaves = leaves

    def persistent_load(self, pid: Any) -> Any:
        return self._leaves[pid]


def _template(shape: Hashable) -> bytes | None:
    """The pickled read-only DictConfig of ``shape``, built by ``OmegaConf.create`` with
    placeholder leaves; None if a placeholder is not found exactly once in its pickle."""
    from omegaconf import OmegaConf

    placeholders: list[str] = []

    def build(part: Any) -> Any:
        if part == _LEAF:
            # A new string object per leaf: found again by identity, never by value.
            placeholders.append("".join(("\0xprun-leaf-", str(len(placeholders)))))
            return placeholders[-1]
        kind, items = part
        if kind is dict:
            return {key: build(item) for key, item in items}
        return [build(item) for item in items]

    template = OmegaConf.create(build(shape), flags={"readonly": True})
    buffer = io.BytesIO()
    pickler = _LeafPickler(buffer, placeholders)
    pickler.dump(template)
    if sorted(pickler.seen) != list(range(len(placeholders))):
        return None
    return buffer.getvalue()


# -- recycling ---------------------------------------------------------------------------------


class _Spare:
    """A config handed out, with what it must still be to be handed out again."""

    __slots__ = ("_counts", "_leaves", "_nodes", "_objects", "_states", "_weakrefable", "root")

    def __init__(self, root: Any, nodes: list[tuple[Any, dict[str, Any], Any]]) -> None:
        self.root = root
        #: (node, its attribute dict, its container or None) in the template's leaf order.
        self._nodes = nodes
        self._leaves = [state for _, state, content in nodes if content is None]
        objects: list[Any] = []
        weakrefable: list[Any] = []
        states: list[tuple[Any, dict[str, Any], int, int | None]] = []
        for node, state, content in nodes:
            metadata = state["_metadata"]
            meta_state = vars(metadata)
            objects += (node, state, metadata, meta_state)
            objects += (meta_state["flags"], meta_state["resolver_cache"])
            weakrefable += (node, metadata)
            if content is not None:
                objects.append(content)
            # What a count does not show: fields changed in place, attributes or keys added.
            pristine = {
                **meta_state,
                "flags": dict(meta_state["flags"]),
                "resolver_cache": dict(meta_state["resolver_cache"]),
            }
            states.append(
                (metadata, pristine, len(state), None if content is None else len(content))
            )
        self._objects = tuple(objects)
        self._weakrefable = tuple(weakrefable)
        self._states = states
        self._counts: tuple[int, ...] = ()

    @classmethod
    def of(cls, root: Any, leaves: list[Any]) -> _Spare | None:
        """``root`` (just unpickled, held by nothing else) as a spare; None if its leaf nodes
        are not found in the order of ``leaves`` (then it is never recycled)."""
        nodes: list[tuple[Any, dict[str, Any], Any]] = []
        try:
            _walk(root, nodes)
        except _NotPlain:
            return None
        found = [state.get("_val") for _, state, content in nodes if content is None]
        if len(found) != len(leaves) or any(a is not b for a, b in zip(found, leaves, strict=True)):
            return None
        return cls(root, nodes)

    def settle(self) -> None:
        """Count the references to the config's objects, once nothing but this spare holds
        them (by the one function that counts them again before each reuse)."""
        self._counts = self._current_counts()

    def _current_counts(self) -> tuple[int, ...]:
        return tuple(map(sys.getrefcount, self._objects))

    def unreachable(self) -> bool:
        """Whether nothing but this spare holds any object of the config, and it is as made."""
        if self._current_counts() != self._counts:
            return False
        if any(map(weakref.getweakrefcount, self._weakrefable)):
            return False
        for (_, state, content), (metadata, pristine, size, length) in zip(
            self._nodes, self._states, strict=True
        ):
            if len(state) != size or vars(metadata) != pristine:
                return False
            if content is not None and len(content) != length:
                return False
        return True

    def refill(self, leaves: list[Any]) -> None:
        """Put a run's leaves in.  The flags each node cached stay: the flags are as made
        (``unreachable``), and OmegaConf clears those caches whenever a flag is set."""
        for state, value in zip(self._leaves, leaves, strict=True):
            state["_val"] = value


def _walk(node: Any, into: list[tuple[Any, dict[str, Any], Any]]) -> None:
    """Every node under ``node`` (itself first), depth first in key order: the order in which
    ``_shape`` lists the leaves."""
    state = vars(node)
    content = state.get("_content")
    if "_val" in state:
        into.append((node, state, None))
        return
    if type(content) is dict:
        children: Any = content.values()
    elif type(content) is list:
        children = content
    else:
        raise _NotPlain  # missing, None or an interpolation: not what a template holds
    into.append((node, state, content))
    for child in children:
        _walk(child, into)


class _NotPlain(Exception):
    """A config node that a template of plain data does not hold."""
