"""``__repr__``, ``__eq__`` and ``__hash__`` for the frozen dataclasses, written once.

``@dataclass`` writes and compiles these three methods for every class it
decorates, and with ``slots=True`` it builds the class twice: for the
50-field ModelSpec and EngineSpec that is about a millisecond each at import,
half of everything the command line spends importing vramcore
(``benchmarks/bench_cli.py``).  A class that is
``@dataclass(frozen=True, slots=True, repr=False, eq=False)`` and derives from
:class:`Record` gets the same three methods from here instead, with the same
behaviour as the generated ones: the repr lists the ``repr=True`` fields as
``Name(field=value, ...)``; two records are equal when they are of the same
class and their ``compare=True`` fields are equal (another class gives
``NotImplemented``); the hash is that of the compared fields' tuple.  The
field tuple is read with one :func:`operator.attrgetter` per class, as fast as
the generated code (``tests/test_record.py`` holds the three to
``dataclasses``' own).

:func:`record` goes one step further for the two 50-60-field specs: the
``__init__`` that ``@dataclass`` compiles for them is most of what remains
(about 0.6 ms each).  It applies ``dataclass(frozen=True, init=False, ...)``
and gives the class one shared ``__init__`` that binds the arguments to the
init fields as the generated one does (positional order, keyword-only fields,
defaults and default factories, the ``init=False`` fields' defaults, then
``__post_init__``), with the same :class:`TypeError` for a missing, repeated
or unknown argument.  It costs a few microseconds a call more than the
generated one, so it is for classes built once per model or engine, not per
estimate.  Type checkers see a plain ``@dataclass`` (``dataclass_transform``).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from operator import attrgetter

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Record", "record"]

_KEYS: dict[type, Any] = {}
_REPRS: dict[type, tuple[str, ...]] = {}


def _key_getter(cls: type) -> Any:
    """Return the attrgetter of `cls`'s compared fields (always a tuple), made once per class."""
    getter = _KEYS.get(cls)
    if getter is None:
        names = [f.name for f in fields(cls) if f.compare]
        # attrgetter of one name returns the value itself: pad with a constant so that it is always a tuple
        getter = attrgetter(*names, "__class__") if len(names) < 2 else attrgetter(*names)
        _KEYS[cls] = getter
    return getter


class Record:
    """Mixin of the frozen dataclasses: repr, equality and hash over their fields (see the module)."""

    __slots__ = ()

    def __repr__(self) -> str:
        cls = type(self)
        names = _REPRS.get(cls)
        if names is None:
            names = _REPRS[cls] = tuple(f.name for f in fields(self) if f.repr)  # type: ignore[arg-type]
        body = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{cls.__qualname__}({body})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        getter = _key_getter(self.__class__)
        return bool(getter(self) == getter(other))

    def __hash__(self) -> int:
        return hash(_key_getter(self.__class__)(self))


class _Plan:
    """How the shared ``__init__`` binds one class's arguments, made on its first instance."""

    __slots__ = ("positional", "names", "required", "defaults", "factories", "fixed", "post_init")

    def __init__(self, cls: type) -> None:
        init = [f for f in fields(cls) if f.init]
        self.positional = tuple(f.name for f in init if not f.kw_only)
        self.names = frozenset(f.name for f in init)
        self.required = tuple(f.name for f in init if f.default is MISSING and f.default_factory is MISSING)
        self.defaults = {f.name: f.default for f in init if f.default is not MISSING}
        self.factories = {f.name: f.default_factory for f in init if f.default_factory is not MISSING}
        # fields outside __init__ with a default are set by the generated __init__ too
        self.fixed: dict[str, tuple[Any, Any]] = {
            f.name: (f.default, f.default_factory) for f in fields(cls) if not f.init
                      and (f.default is not MISSING or f.default_factory is not MISSING)}
        self.post_init = getattr(cls, "__post_init__", None)


def _missing(qualname: str, missing: list[str], positional: tuple[str, ...]) -> str:
    """Python's own message for missing arguments: the positional ones first, else the keyword-only ones."""
    first = [n for n in missing if n in positional]
    kind = "positional" if first else "keyword-only"
    names = [repr(n) for n in (first or missing)]
    listed = names[0] if len(names) == 1 else (
        f"{names[0]} and {names[1]}" if len(names) == 2 else f"{', '.join(names[:-1])}, and {names[-1]}")
    return f"{qualname} missing {len(names)} required {kind} argument{'s' if len(names) > 1 else ''}: {listed}"


def _too_many(qualname: str, n_args: int, plan: _Plan, kwargs: dict[str, Any]) -> str:
    """Python's own message for too many positional arguments (``self`` counted, as the interpreter does)."""
    count = len(plan.positional) + 1
    optional = sum(1 for n in plan.positional if n not in plan.required)
    sig, plural = (f"from {count - optional} to {count}", True) if optional else (str(count), count != 1)
    given = n_args + 1
    kw_given = sum(1 for k in kwargs if k not in plan.positional)
    kw = (f" positional argument{'s' if given != 1 else ''} (and {kw_given} keyword-only argument"
          f"{'s' if kw_given != 1 else ''})") if kw_given else ""
    verb = "was" if given == 1 and not kw_given else "were"
    return f"{qualname} takes {sig} positional argument{'s' if plural else ''} but {given}{kw} {verb} given"


def _bind_init(cls: type) -> Any:
    """Return the ``__init__`` of `cls` (see the module): arguments bound to the init fields, then post-init."""
    plans: list[_Plan] = []
    set_field = object.__setattr__
    qualname = f"{cls.__qualname__}.__init__()"

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if not plans:
            plans.append(_Plan(cls))
        plan = plans[0]
        positional = plan.positional
        n = min(len(args), len(positional))
        given = set(positional[:n])
        for name in kwargs:     # CPython's order: the keywords, then the counts
            if name not in plan.names:
                raise TypeError(f"{qualname} got an unexpected keyword argument {name!r}")
            if name in given:
                raise TypeError(f"{qualname} got multiple values for argument {name!r}")
        if len(args) > len(positional):
            raise TypeError(_too_many(qualname, len(args), plan, kwargs))
        for name, value in zip(positional, args, strict=False):
            set_field(self, name, value)
        for name, value in kwargs.items():
            set_field(self, name, value)
        given.update(kwargs)
        if len(given) < len(plan.names):
            missing = [n for n in plan.required if n not in given]
            if missing:
                raise TypeError(_missing(qualname, missing, plan.positional))
            for name, value in plan.defaults.items():
                if name not in given:
                    set_field(self, name, value)
            for name, factory in plan.factories.items():
                if name not in given:
                    set_field(self, name, factory())
        for name, (value, factory) in plan.fixed.items():
            set_field(self, name, value if factory is MISSING else factory())
        if plan.post_init is not None:
            plan.post_init(self)

    __init__.__qualname__ = qualname[:-2]
    return __init__


class _Signature:
    """``inspect.signature`` of a :func:`record` class: what the generated ``__init__`` would show, made on use."""

    def __get__(self, obj: object, owner: type) -> Any:
        import inspect

        params = []
        for f in fields(owner):
            if not f.init:
                continue
            kind = inspect.Parameter.KEYWORD_ONLY if f.kw_only else inspect.Parameter.POSITIONAL_OR_KEYWORD
            default = f.default if f.default is not MISSING else (
                _FACTORY if f.default_factory is not MISSING else inspect.Parameter.empty)
            params.append(inspect.Parameter(f.name, kind, default=default, annotation=f.type))
        return inspect.Signature(params, return_annotation=None)


class _Factory:
    """The default shown for a field made by a default factory (as dataclasses shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _record(cls: type | None = None, /, *, frozen: bool = True, slots: bool = False, kw_only: bool = False) -> Any:
    """Make `cls` a frozen dataclass with the shared ``__init__`` (see the module); used as ``@dataclass``."""
    if frozen is not True:
        raise TypeError("record: the records are frozen (frozen=True)")

    def wrap(c: type) -> type:
        made: Any = dataclass(c, frozen=True, init=False, repr=False, eq=False, slots=slots, kw_only=kw_only)
        made.__init__ = _bind_init(made)
        made.__signature__ = _Signature()
        return made

    return wrap if cls is None else wrap(cls)


if TYPE_CHECKING:
    # type checkers see the dataclass it is (its own repr / eq are replaced by Record's at run time)
    from dataclasses import dataclass as record
else:
    record = _record
