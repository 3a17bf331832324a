"""Name -> class registries, one per kind (activations, losses, optimizers, ...).

A registry resolves what a user may pass where a component is expected: a registered name
(``"relu"``), a config dict (``{"class_name": "Adam", "config": {...}}``, as written by
``get_config``), an instance, or a class. Unknown names fail with the valid names and the
closest match, in the form Keras uses for its errors.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: names -> user classes (or objects) given to ``load_model(custom_objects=...)``
_CUSTOM_OBJECTS: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "custom_objects", default={})  # noqa: B039 - never mutated


@contextlib.contextmanager
def custom_object_scope(objects: dict[str, Any] | None) -> Iterator[None]:
    """Inside this block, names in ``objects`` resolve to the user's classes (and, for
    ``CustomActivation``, to ``(function, derivative)`` pairs), as Keras's
    ``custom_object_scope``."""
    if objects is not None and not isinstance(objects, dict):
        raise TypeError(f"`custom_objects` must be a dict {{name: class}}. Received: "
                        f"custom_objects={objects!r}")
    token = _CUSTOM_OBJECTS.set({**_CUSTOM_OBJECTS.get(), **(objects or {})})
    try:
        yield
    finally:
        _CUSTOM_OBJECTS.reset(token)


def custom_object(name: str) -> Any | None:
    """The object registered as ``name`` in the current ``custom_object_scope``, or None."""
    return _CUSTOM_OBJECTS.get().get(name)


class Configurable:
    """Rebuilt from ``get_config()``: ``cls.from_config(obj.get_config())`` equals ``obj``.

    The base of every registered component (activations, losses, initialisers, regularisers,
    schedules); its ``repr`` shows the config.
    """

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Registry(Generic[T]):
    """Maps names (and aliases) of one kind of component to their classes."""

    def __init__(self, kind: str, argument: str, base: type[T]) -> None:
        self.kind = kind  # e.g. "activation"
        self.argument = argument  # the argument name shown in errors, e.g. "activation"
        self.base = base  # instances and subclasses of it are accepted as they are
        self._classes: dict[str, type[T]] = {}  # names, aliases and class names
        self._names: set[str] = set()  # names and aliases, the ones shown to users
        self._canonical: dict[type[T], str] = {}
        self.extra_names: tuple[str, ...] = ()  # names resolved outside the registry

    def register(self, name: str, *aliases: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: register ``cls`` under ``name`` and any ``aliases``."""

        def decorator(cls: type[T]) -> type[T]:
            for key in (name, *aliases):
                if key in self._classes:
                    raise ValueError(f"{self.kind} name {key!r} is already registered")
                self._classes[key] = cls
                self._names.add(key)
            self._classes.setdefault(cls.__name__, cls)
            self._canonical[cls] = name
            return cls

        return decorator

    def register_class(self, cls: type[T]) -> type[T]:
        """Class decorator: make ``cls`` resolvable by its class name only (for configs
        that name it), without listing it among the names users choose from."""
        self._classes.setdefault(cls.__name__, cls)
        return cls

    def names(self) -> list[str]:
        """Every registered name and alias (class names excluded), sorted."""
        return sorted({*self._names, *self.extra_names})

    def name_of(self, cls: type) -> str:
        """The canonical registered name of ``cls``."""
        return self._canonical[cls]

    def lookup(self, name: str, argument: str | None = None) -> type[T]:
        """The class registered as ``name``; a clear ``ValueError`` when there is none."""
        custom = custom_object(name) if isinstance(name, str) else None
        if isinstance(custom, type) and issubclass(custom, self.base):
            return custom
        key = name if name in self._classes else str(name).lower()
        if key in self._classes:
            return self._classes[key]
        raise ValueError(self.unknown_message(str(name), argument))

    def unknown_message(self, name: str, argument: str | None = None) -> str:
        argument = argument or self.argument
        valid = self.names()
        close = difflib.get_close_matches(name.lower(), valid, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return (
            f"Unknown {self.kind} {name!r} for `{argument}`.{hint} "
            f"Valid names are: {', '.join(valid)}. Received: {argument}={name!r}"
        )

    def get(self, identifier: Any, argument: str | None = None, **kwargs: Any) -> T:
        """Resolve ``identifier`` (name, config dict, class or instance) to an instance.

        ``argument`` names the user's argument in error messages (e.g. ``kernel_initializer``).
        """
        argument = argument or self.argument
        if isinstance(identifier, str):
            return self.lookup(identifier, argument)(**kwargs)
        if isinstance(identifier, dict):
            return self.from_config(identifier)
        if isinstance(identifier, type) and issubclass(identifier, self.base):
            return identifier(**kwargs)
        if isinstance(identifier, self.base):
            return identifier
        raise TypeError(
            f"`{argument}` must be a {self.kind} name (one of {', '.join(self.names())}), "
            f"a config dict or a {self.kind} object. Received: {argument}={identifier!r}"
        )

    def serialize(self, obj: Any) -> dict[str, Any]:
        """``{"class_name": ..., "config": ...}`` for ``obj``, the inverse of ``from_config``."""
        return {"class_name": type(obj).__name__, "config": obj.get_config()}

    def from_config(self, config: dict[str, Any]) -> T:
        """Rebuild an object from the dict ``serialize`` wrote."""
        if not isinstance(config, dict) or "class_name" not in config:
            raise ValueError(
                f"A {self.kind} config must be a dict with keys 'class_name' and 'config'. "
                f"Received: {config!r}"
            )
        cls = self.lookup(config["class_name"])
        options = config.get("config") or {}
        if not isinstance(options, dict):
            raise ValueError(
                f"The 'config' of a {self.kind} must be a dict. Received: {options!r}"
            )
        return cls.from_config(options) if hasattr(cls, "from_config") else cls(**options)
