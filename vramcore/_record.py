"""The frozen record classes of vramcore, built without :mod:`dataclasses`.

``@dataclass`` writes and compiles ``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__`` and ``__delattr__`` for every class it decorates,
and importing :mod:`dataclasses` imports :mod:`inspect` (with ``ast``, ``dis``,
``tokenize`` ...): together about a third of what ``vramcore estimate`` spends
starting up (``benchmarks/bench_cli.py``).  :func:`record` gives a class the
same behaviour from functions written once here:

- the fields are read from the class's own ``__annotations__`` (kept as the
  strings ``from __future__ import annotations`` leaves, never evaluated) and
  those of its record bases, in dataclasses' order; a class-level value is the
  default, and :func:`field` takes what ``dataclasses.field`` takes
  (``default_factory``, ``init``, ``repr``, ``hash``, ``compare``,
  ``metadata``, ``kw_only``);
- one shared ``__init__`` binds the arguments to the init fields as the
  generated one does (positional order, keyword-only fields, defaults and
  default factories, the ``init=False`` fields' defaults, then
  ``__post_init__``), with the interpreter's own :class:`TypeError` for a
  missing, repeated, unknown or extra argument;
- ``__repr__`` lists the ``repr=True`` fields as ``Name(field=value, ...)``
  (``...`` for a record inside itself); two records are equal when they are of
  the same class and the tuples of their ``compare=True`` fields are equal
  (another class gives ``NotImplemented``); the hash is that of the tuple;
- assigning or deleting a field raises :class:`dataclasses.FrozenInstanceError`
  (imported on that error only); ``slots=True`` gives the class ``__slots__``
  (and pickling through ``__getstate__`` / ``__setstate__``); ``__match_args__``
  names the positional init fields.

For code that imports :mod:`dataclasses` itself, ``dataclasses.fields``,
``replace``, ``asdict`` and ``is_dataclass`` work on these classes as on
dataclasses: ``__dataclass_fields__`` and ``__dataclass_params__`` are made on
first access (a dataclass of the same fields, built then).  vramcore uses
:func:`fields`, :func:`replace` and :func:`asdict` from here instead.
:class:`Record` is the mixin of the classes declared ``repr=False, eq=False``:
the same three methods, found through the class.  Type checkers see
``dataclasses.dataclass`` and ``dataclasses.field``
(``tests/test_record.py`` holds the two to each other).
"""

from __future__ import annotations

from _thread import get_ident
from operator import attrgetter
from types import MappingProxyType  # loaded by functools already

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    _T = TypeVar("_T")

__all__ = ["MISSING", "Field", "Record", "asdict", "field", "fields", "record", "replace"]


class _MissingType:
    """The sentinel of a field without a default (``dataclasses.MISSING``'s counterpart)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


#: No default (and no default factory) given.
MISSING: Any = _MissingType()


class Field:
    """One field of a :func:`record` class: what :func:`field` was given, its name and its annotation.

    Attributes
    ----------
    name : str
        The attribute.
    type : str
        The annotation, as written (a string under ``from __future__ import annotations``).
    default, default_factory : object
        The default value, or the callable that makes one per instance (:data:`MISSING` for none).
    init, repr, compare : bool
        Whether the field is an argument of ``__init__``, shown in the repr, and compared.
    hash : bool or None
        Whether the field is hashed (None: when compared).
    kw_only : bool
        Whether the argument is keyword-only.
    metadata : mapping
        The caller's own data (read-only).
    """

    __slots__ = ("name", "type", "default", "default_factory", "init", "repr", "hash", "compare", "metadata",
                 "kw_only")

    def __init__(self, default: Any, default_factory: Any, init: bool, repr: bool, hash: bool | None,
                 compare: bool, metadata: Any, kw_only: Any) -> None:
        self.name: str = ""
        self.type: Any = None
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.hash = hash
        self.compare = compare
        self.metadata = metadata
        self.kw_only = kw_only

    def __repr__(self) -> str:
        return (f"Field(name={self.name!r}, type={self.type!r}, default={self.default!r}, "
                f"default_factory={self.default_factory!r}, init={self.init!r}, repr={self.repr!r}, "
                f"hash={self.hash!r}, compare={self.compare!r}, metadata={self.metadata!r}, "
                f"kw_only={self.kw_only!r})")


def _field(*, default: Any = MISSING, default_factory: Any = MISSING, init: bool = True, repr: bool = True,
           hash: bool | None = None, compare: bool = True, metadata: Any = None, kw_only: Any = MISSING) -> Any:
    """Return a field specification for a :func:`record` class, as ``dataclasses.field`` does.

    Parameters
    ----------
    default : object, optional
        The field's default value.
    default_factory : callable, optional
        Called with no argument to make the default of each instance (not with `default`).
    init : bool
        Whether ``__init__`` takes the field (else only its default sets it).
    repr : bool
        Whether the repr shows it.
    hash : bool or None
        Whether the hash includes it (None: when `compare` is True).
    compare : bool
        Whether equality (and the hash) compares it.
    metadata : mapping, optional
        Free data kept on the :class:`Field`, read-only.
    kw_only : bool, optional
        Whether the argument is keyword-only (default: the class's ``kw_only``).

    Returns
    -------
    Field
        The specification; :func:`record` names it and replaces it by the default.

    Raises
    ------
    ValueError
        When both `default` and `default_factory` are given.
    """
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    meta = _EMPTY if metadata is None else MappingProxyType(metadata)
    return Field(default, default_factory, init, repr, hash, compare, meta, kw_only)


_EMPTY: Any = MappingProxyType({})    # a field without metadata (as dataclasses gives it)


def fields(class_or_instance: Any) -> tuple[Field, ...]:
    """Return the fields of a :func:`record` class or instance, in order (``dataclasses.fields``' counterpart).

    Parameters
    ----------
    class_or_instance : type or object
        A record class or one of its instances.

    Returns
    -------
    tuple of Field
        Every field, ``init=False`` ones included.

    Raises
    ------
    TypeError
        When it is not a record.
    """
    try:
        return class_or_instance.__record_fields__  # type: ignore[no-any-return]
    except AttributeError:
        raise TypeError("must be called with a record type or instance") from None


def replace(obj: _T, /, **changes: Any) -> _T:
    """Return a copy of the record `obj` with `changes` applied (``dataclasses.replace``' counterpart).

    Parameters
    ----------
    obj : record instance
        The record to copy.
    **changes
        New values of init fields, by name.

    Returns
    -------
    record instance
        A new instance of ``type(obj)``, built through its ``__init__`` (so ``__post_init__`` runs again).

    Raises
    ------
    TypeError
        When `obj` is not a record instance, or for an unknown field (from ``__init__``).
    ValueError
        When a change names an ``init=False`` field.
    """
    cls = obj.__class__
    record_fields = getattr(cls, "__record_fields__", None)
    if record_fields is None or isinstance(obj, type):
        raise TypeError("replace() should be called on record instances")
    for f in record_fields:
        if not f.init:
            if f.name in changes:
                raise ValueError(f"field {f.name} is declared with init=False, it cannot be specified with replace()")
            continue
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return cls(**changes)  # type: ignore[no-any-return]


_ATOMS = frozenset((int, float, str, bool, bytes, complex, type(None)))


def _asdict_value(value: Any, factory: Any) -> Any:
    kind = type(value)
    if kind in _ATOMS:
        return value
    if hasattr(kind, "__record_fields__"):
        return factory([(f.name, _asdict_value(getattr(value, f.name), factory)) for f in kind.__record_fields__])
    if hasattr(kind, "__dataclass_fields__"):            # a dataclass of someone else's
        import dataclasses

        return dataclasses.asdict(value, dict_factory=factory)
    if isinstance(value, tuple) and hasattr(value, "_fields"):     # a named tuple: its fields as arguments
        return kind(*[_asdict_value(v, factory) for v in value])
    if isinstance(value, (list, tuple)):
        return kind(_asdict_value(v, factory) for v in value)
    if isinstance(value, dict):
        return kind((_asdict_value(k, factory), _asdict_value(v, factory)) for k, v in value.items())
    import copy

    return copy.deepcopy(value)


def asdict(obj: Any, *, dict_factory: Any = dict) -> dict[str, Any]:
    """Return the fields of the record `obj` as a dict, recursively (``dataclasses.asdict``' counterpart).

    Parameters
    ----------
    obj : record instance
        The record.
    dict_factory : callable
        Makes each dict from a list of ``(name, value)`` pairs.

    Returns
    -------
    dict
        Field name to value; records, lists, tuples and dicts inside are converted likewise, anything
        else deep-copied.

    Raises
    ------
    TypeError
        When `obj` is not a record instance.
    """
    if isinstance(obj, type) or not hasattr(type(obj), "__record_fields__"):
        raise TypeError("asdict() should be called on record instances")
    return _asdict_value(obj, dict_factory)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- repr, equality, hash
_RUNNING: set[tuple[int, int]] = set()


def _repr_fields(self: Any, names: tuple[str, ...]) -> str:
    """``Name(a=1, b='x')``; ``...`` for a record met again inside its own repr (in the same thread)."""
    key = (id(self), get_ident())
    if key in _RUNNING:
        return "..."
    _RUNNING.add(key)
    try:
        body = ", ".join([f"{n}={getattr(self, n)!r}" for n in names])
    finally:
        _RUNNING.discard(key)
    return f"{self.__class__.__qualname__}({body})"


def _tuple_getter(names: list[str]) -> Any:
    """Return a function of an instance giving the tuple of its `names` attributes (always a tuple)."""
    if len(names) >= 2:
        return attrgetter(*names)
    if names:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return lambda obj: ()


_KEYS: dict[type, Any] = {}
_HASH_KEYS: dict[type, Any] = {}
_REPRS: dict[type, tuple[str, ...]] = {}


def _compared(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.compare]


def _hashed(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if (f.compare if f.hash is None else f.hash)]


class Record:
    """Mixin of the record classes declared ``repr=False, eq=False``: repr, equality and hash over their fields."""

    __slots__ = ()

    def __repr__(self) -> str:
        cls = type(self)
        names = _REPRS.get(cls)
        if names is None:
            names = _REPRS[cls] = tuple(f.name for f in fields(cls) if f.repr)
        return _repr_fields(self, names)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        getter = _KEYS.get(self.__class__)
        if getter is None:
            getter = _KEYS[self.__class__] = _tuple_getter(_compared(self.__class__))
        return bool(getter(self) == getter(other))

    def __hash__(self) -> int:
        getter = _HASH_KEYS.get(self.__class__)
        if getter is None:
            getter = _HASH_KEYS[self.__class__] = _tuple_getter(_hashed(self.__class__))
        return hash(getter(self))


def _make_repr(names: tuple[str, ...]) -> Any:
    def __repr__(self: Any) -> str:
        return _repr_fields(self, names)

    return __repr__


def _make_eq(names: list[str]) -> Any:
    key = _tuple_getter(names)

    def __eq__(self: Any, other: object) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    return __eq__


def _make_hash(names: list[str]) -> Any:
    key = _tuple_getter(names)

    def __hash__(self: Any) -> int:
        return hash(key(self))

    return __hash__


# ---------------------------------------------------------------------- frozen, pickling
def _frozen_error(message: str) -> AttributeError:
    """``dataclasses.FrozenInstanceError`` (an AttributeError), importing dataclasses on this error only."""
    from dataclasses import FrozenInstanceError

    return FrozenInstanceError(message)


def _make_frozen(cls: Any, names: frozenset[str]) -> tuple[Any, Any]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise _frozen_error(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise _frozen_error(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    __setattr__.__qualname__ = f"{cls.__qualname__}.__setattr__"
    __delattr__.__qualname__ = f"{cls.__qualname__}.__delattr__"
    return __setattr__, __delattr__


def _getstate(self: Any) -> list[Any]:
    """Return the fields' values, in order (a slotted frozen record has no ``__dict__`` to pickle)."""
    return [getattr(self, f.name) for f in fields(self)]


def _setstate(self: Any, state: list[Any]) -> None:
    for f, value in zip(fields(self), state, strict=False):
        object.__setattr__(self, f.name, value)


# ---------------------------------------------------------------------- __init__
class _Plan:
    """How the shared ``__init__`` binds one class's arguments, made on its first instance."""

    __slots__ = ("positional", "names", "required", "defaults", "factories", "fixed", "post_init")

    def __init__(self, cls: type) -> None:
        every = fields(cls)
        init = [f for f in every if f.init]
        self.positional = tuple(f.name for f in init if not f.kw_only)
        self.names = frozenset(f.name for f in init)
        self.required = tuple(f.name for f in init if f.default is MISSING and f.default_factory is MISSING)
        self.defaults = {f.name: f.default for f in init if f.default is not MISSING}
        self.factories = {f.name: f.default_factory for f in init if f.default_factory is not MISSING}
        # fields outside __init__ with a default are set by the generated __init__ too
        self.fixed: dict[str, tuple[Any, Any]] = {
            f.name: (f.default, f.default_factory) for f in every if not f.init
            and (f.default is not MISSING or f.default_factory is not MISSING)}
        self.post_init = hasattr(cls, "__post_init__")


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
        n = len(args)
        if kwargs:
            given = set(positional[:n])
            for name in kwargs:     # CPython's order: the keywords, then the counts
                if name not in plan.names:
                    raise TypeError(f"{qualname} got an unexpected keyword argument {name!r}")
                if name in given:
                    raise TypeError(f"{qualname} got multiple values for argument {name!r}")
        if n > len(positional):
            raise TypeError(_too_many(qualname, n, plan, kwargs))
        for name, value in zip(positional, args, strict=False):
            set_field(self, name, value)
        for name, value in kwargs.items():
            set_field(self, name, value)
        if n + len(kwargs) < len(plan.names):
            given = set(positional[:n])
            given.update(kwargs)
            missing = [name for name in plan.required if name not in given]
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
        if plan.post_init:
            self.__post_init__()

    __init__.__qualname__ = qualname[:-2]
    return __init__


class _Factory:
    """The default shown for a field made by a default factory (as dataclasses shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _init_order(record_fields: tuple[Field, ...]) -> list[Field]:
    """Return the init fields as ``__init__`` takes them: the positional ones, then the keyword-only ones."""
    return ([f for f in record_fields if f.init and not f.kw_only]
            + [f for f in record_fields if f.init and f.kw_only])


def _text_signature(record_fields: tuple[Field, ...]) -> str:
    """Return the ``__init__`` signature as ``inspect`` writes it: ``(a: 'int', b: 'str' = 'x', *, c: 'int' = 0)``."""
    parts: list[str] = []
    star = False
    for f in _init_order(record_fields):
        if f.kw_only and not star:
            parts.append("*")
            star = True
        text = f"{f.name}: {f.type!r}"
        if f.default is not MISSING:
            text += f" = {f.default!r}"
        elif f.default_factory is not MISSING:
            text += " = <factory>"
        parts.append(text)
    return f"({', '.join(parts)})"


class _Signature:
    """``inspect.signature`` of a :func:`record` class: what the generated ``__init__`` would show, made on use."""

    def __get__(self, obj: object, owner: type) -> Any:
        import inspect

        params = []
        for f in _init_order(fields(owner)):
            kind = inspect.Parameter.KEYWORD_ONLY if f.kw_only else inspect.Parameter.POSITIONAL_OR_KEYWORD
            default = f.default if f.default is not MISSING else (
                _FACTORY if f.default_factory is not MISSING else inspect.Parameter.empty)
            params.append(inspect.Parameter(f.name, kind, default=default, annotation=f.type))
        return inspect.Signature(params, return_annotation=None)


# ---------------------------------------------------------------------- dataclasses' view, on first access
def _shadow(cls: type) -> Any:
    """Return a real dataclass with `cls`'s fields and parameters: its ``__dataclass_fields__`` / ``_params__``."""
    import dataclasses

    params = cls.__dict__["__record_params__"]
    namespace: dict[str, Any] = {"__annotations__": {}, "__module__": cls.__module__,
                                 "__qualname__": cls.__qualname__}
    for f in fields(cls):
        namespace["__annotations__"][f.name] = f.type
        namespace[f.name] = dataclasses.field(
            default=f.default if f.default is not MISSING else dataclasses.MISSING,
            default_factory=f.default_factory if f.default_factory is not MISSING else dataclasses.MISSING,
            init=f.init, repr=f.repr, hash=f.hash, compare=f.compare,
            metadata=None if f.metadata is _EMPTY else f.metadata, kw_only=f.kw_only)
    return dataclasses.dataclass(type(cls.__name__, (), namespace), **params)


class _DataclassView:
    """``__dataclass_fields__`` or ``__dataclass_params__`` of a record class, made when first read."""

    def __init__(self, cls: type, attr: str) -> None:
        self.cls = cls
        self.attr = attr

    def __get__(self, obj: object, owner: type) -> Any:
        shadow = _shadow(self.cls)
        for attr in ("__dataclass_fields__", "__dataclass_params__"):
            setattr(self.cls, attr, getattr(shadow, attr))     # read once: plain attributes from now on
        return getattr(shadow, self.attr)


# ---------------------------------------------------------------------- the decorator
def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return text.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))


def _own_annotations(cls: type) -> dict[str, Any]:
    """Return the annotations `cls` itself declares (strings under ``from __future__ import annotations``)."""
    own = cls.__dict__.get("__annotations__")
    if own is None:     # Python 3.14 makes them on first access (and, under the __future__ import, as strings)
        own = cls.__annotations__ if "__annotate__" in cls.__dict__ else {}
    return own  # type: ignore[no-any-return]


def _collect(cls: type, kw_only: bool) -> dict[str, Field]:
    """Return the fields of `cls`: its record bases' (the furthest first), then its own annotations, checked."""
    collected: dict[str, Field] = {}
    for base in cls.__mro__[-1:0:-1]:
        for f in base.__dict__.get("__record_fields__", ()):
            collected[f.name] = f
    own = _own_annotations(cls)
    for name, annotation in own.items():
        if _is_classvar(annotation):
            continue
        if isinstance(annotation, str) and annotation.startswith(("InitVar", "dataclasses.InitVar")):
            raise TypeError(f"{cls.__name__}.{name}: record does not support InitVar fields")
        value = cls.__dict__.get(name, MISSING)
        if isinstance(value, Field):
            f = Field(value.default, value.default_factory, value.init, value.repr, value.hash,
                      value.compare, value.metadata, value.kw_only)
        else:
            f = Field(value, MISSING, True, True, None, True, _EMPTY, MISSING)
        f.name = name
        f.type = annotation
        if f.kw_only is MISSING:
            f.kw_only = kw_only
        if f.default is not MISSING and f.default.__class__.__hash__ is None:
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: "
                             "use default_factory")
        collected[name] = f
    for name, value in cls.__dict__.items():
        if isinstance(value, Field) and name not in own:
            raise TypeError(f"{name!r} is a field but has no type annotation")
    seen_default = False
    for f in collected.values():
        if not f.init or f.kw_only:
            continue
        if f.default is MISSING and f.default_factory is MISSING:
            if seen_default:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
        else:
            seen_default = True
    return collected


def _slotted(cls: type, record_fields: tuple[Field, ...]) -> type:
    """`cls` made again with ``__slots__`` for its fields (those no base already has a slot for)."""
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__} already specifies __slots__")
    namespace = dict(cls.__dict__)
    inherited: set[str] = set()
    for base in cls.__mro__[1:-1]:
        slots = base.__dict__.get("__slots__", ())
        inherited.update((slots,) if isinstance(slots, str) else slots)
    for f in record_fields:
        namespace.pop(f.name, None)
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    namespace["__slots__"] = tuple(f.name for f in record_fields if f.name not in inherited)
    qualname = cls.__qualname__
    made = type(cls)(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = qualname
    return made


def _record(cls: type | None = None, /, *, init: bool = True, repr: bool = True, eq: bool = True,
            order: bool = False, unsafe_hash: bool = False, frozen: bool = True, match_args: bool = True,
            kw_only: bool = False, slots: bool = False) -> Any:
    """Make `cls` a frozen record class (see the module); used as ``@dataclass`` is.

    Parameters
    ----------
    cls : type, optional
        The class (when used without arguments, ``@record``).
    init, repr, eq : bool
        Whether to add ``__init__``, ``__repr__`` and ``__eq__`` (with ``__hash__``); a method the class
        defines itself is kept.
    order, unsafe_hash : bool
        Not supported (always False).
    frozen : bool
        Must be True: every record is frozen.
    match_args : bool
        Whether to add ``__match_args__``.
    kw_only : bool
        Whether the fields are keyword-only unless their :func:`field` says otherwise.
    slots : bool
        Whether the instances have ``__slots__`` (no ``__dict__``).

    Returns
    -------
    type or callable
        The record class (a new class when `slots`), or the decorator.

    Raises
    ------
    TypeError
        For ``frozen=False``, ``order=True`` or ``unsafe_hash=True``, a field declared after a default
        without one, a ``field()`` without annotation, or a frozen class defining ``__setattr__`` /
        ``__delattr__``.
    ValueError
        For a mutable default (a list, dict or set: use ``default_factory``).
    """
    if frozen is not True:
        raise TypeError("record: the records are frozen (frozen=True)")
    if order or unsafe_hash:
        raise TypeError("record: order=True and unsafe_hash=True are not supported")
    params = {"init": init, "repr": repr, "eq": eq, "frozen": True, "match_args": match_args,
              "kw_only": kw_only}

    def wrap(c: type) -> type:
        collected = _collect(c, kw_only)
        record_fields = tuple(collected.values())
        own = _own_annotations(c)
        for f in record_fields:     # a class-level value stays the default (as in a dataclass), a field() goes
            if f.name in own and isinstance(c.__dict__.get(f.name), Field):
                if f.default is MISSING:
                    delattr(c, f.name)
                else:
                    setattr(c, f.name, f.default)
        for name in ("__setattr__", "__delattr__"):
            if name in c.__dict__:
                raise TypeError(f"Cannot overwrite attribute {name} in class {c.__name__}")
        body = c.__dict__
        class_hash = body.get("__hash__", MISSING)
        explicit_hash = not (class_hash is MISSING or (class_hash is None and "__eq__" in body))
        made: Any = _slotted(c, record_fields) if slots else c
        made.__record_fields__ = record_fields
        made.__record_params__ = params
        if init and "__init__" not in body:
            made.__init__ = _bind_init(made)
            made.__signature__ = _Signature()
        if repr and "__repr__" not in body:
            made.__repr__ = _make_repr(tuple(f.name for f in record_fields if f.repr))
        if eq and "__eq__" not in body:
            made.__eq__ = _make_eq([f.name for f in record_fields if f.compare])
        if eq and not explicit_hash:
            made.__hash__ = _make_hash([f.name for f in record_fields if (f.compare if f.hash is None else f.hash)])
        set_attr, del_attr = _make_frozen(made, frozenset(f.name for f in record_fields))
        made.__setattr__ = set_attr
        made.__delattr__ = del_attr
        if slots:
            if "__getstate__" not in body:
                made.__getstate__ = _getstate
            if "__setstate__" not in body:
                made.__setstate__ = _setstate
        if "__replace__" not in body:     # copy.replace (Python 3.13), as dataclasses gives it
            made.__replace__ = replace
        if match_args and "__match_args__" not in body:
            made.__match_args__ = tuple(f.name for f in record_fields if f.init and not f.kw_only)  # type: ignore[misc]
        made.__dataclass_fields__ = _DataclassView(made, "__dataclass_fields__")
        made.__dataclass_params__ = _DataclassView(made, "__dataclass_params__")
        if not made.__doc__:
            made.__doc__ = made.__name__ + _text_signature(record_fields)
        return made

    return wrap if cls is None else wrap(cls)


if TYPE_CHECKING:
    # type checkers see the dataclass it is (its own repr / eq may be Record's at run time)
    from dataclasses import dataclass as record
    from dataclasses import field as field
else:
    _record.__name__ = _record.__qualname__ = "record"
    _field.__name__ = _field.__qualname__ = "field"
    record = _record
    field = _field
