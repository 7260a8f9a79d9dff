"""The plugin contract shared by sources, actuators and notifiers, checked at load time.

A plugin is a class registered under an entry point (:mod:`watchdog.plugins`). Besides
the methods of its kind's Protocol (``fetch``; ``apply`` and ``read``; ``send``) it may
declare, with these defaults (:class:`PluginBase`; each kind's ``base.py`` adds its
methods, in the manner of APScheduler 3.x's ``BaseExecutor``/``BaseJobStore``):

* ``Options``: a :class:`PluginOptions` model of its ``options:`` in the daemon config.
  They are validated before the plugin is built; each error names the option's own
  file:line and the valid fields. Durations are written the Prometheus way (``5s``,
  ``1m30s``), as everywhere in the config. Without a model, options go to the
  constructor as they are.
* ``secret_options``: the names of options that hold secrets. An inline value becomes a
  ``SecretStr``; secrets are never logged or shown.
* ``from_config(config, *, journal_path)``: builds the plugin from the validated
  options (default: ``cls(**options)``).
* ``close()``: releases what it holds open (default: nothing).
* ``disabled``: True once it has given up (a notifier whose token Slack revoked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from watchdog.errors import PluginError


class PluginLifecycle(Protocol):
    """The plugin contract every kind shares, checked when an entry point is loaded
    (``watchdog/daemon/build.py``; defaults in :class:`PluginBase` and each kind's
    ``base.py``). On the class: ``Options`` (a pydantic model of its config options,
    validated with each option's file:line; without one the options go to the constructor
    as they are), ``secret_options`` (the option names that hold secrets: an inline value
    becomes a SecretStr, never shown) and ``from_config(config, *, journal_path)``
    (default: the constructor); on the instance:
    """

    def close(self) -> None:
        """Release what it holds open (HTTP clients); called on reload and at exit."""
        ...

    @property
    def disabled(self) -> bool:
        """True once it has given up (a notifier whose token was revoked)."""
        ...


class PluginOptions(BaseModel):
    """Base of a plugin's options model: frozen, unknown options refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def given(self) -> dict[str, Any]:
        """The options the config sets, validated (durations in seconds, secrets as
        ``SecretStr``); the constructor's defaults apply to the rest."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class PluginBase:
    """Defaults of the contract (see the module docstring)."""

    name: str
    Options: ClassVar[type[BaseModel] | None] = None
    secret_options: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, journal_path: str | None = None
                    ) -> Self:
        """Build from the validated options (``journal_path``: the daemon's journal, for a
        plugin that keeps state there)."""
        return cls(**config)

    def close(self) -> None:
        """Release what the plugin holds open (HTTP clients); nothing by default."""

    @property
    def disabled(self) -> bool:
        return False


@dataclass(frozen=True)
class Contract:
    """What a kind of plugin must have: its methods, in the words of an error message."""

    kind: str  # "Source"
    methods: tuple[str, ...]  # ("fetch",)
    shape: str  # "name and fetch(module, start, end) -> SeriesStore"
    where: str  # "watchdog/sources/base.py"


def check_contract(contract: Contract, entry: str, factory: object) -> None:
    """PluginError unless ``factory`` (what entry point ``entry`` loads) is a plugin
    class of this kind."""
    def refuse(why: str) -> PluginError:
        return PluginError(f"entry point {entry} does not point to a {contract.kind}: {why} "
                           f"(a {contract.kind} is a class with {contract.shape}; see "
                           f"{contract.where})")

    if not isinstance(factory, type):
        raise refuse(f"it loads {type(factory).__name__} {factory!r}, not a class")
    missing = [m for m in contract.methods if not callable(getattr(factory, m, None))]
    if missing:
        raise refuse(f"{factory.__module__}.{factory.__qualname__} has no "
                     f"{', '.join(m + '()' for m in missing)}")
    model = getattr(factory, "Options", None)
    if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise refuse(f"its Options is {model!r}, not a pydantic model")
    secrets: object = getattr(factory, "secret_options", frozenset())
    if not isinstance(secrets, set | frozenset | tuple | list) \
            or not all(isinstance(s, str) for s in secrets):
        raise refuse(f"its secret_options is {secrets!r}, not a set of option names")


def secret_names(factory: object) -> frozenset[str]:
    return frozenset(getattr(factory, "secret_options", frozenset()))


def options_model(factory: object) -> type[BaseModel] | None:
    model = getattr(factory, "Options", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


class OptionErrors(Exception):
    """Options refused by a plugin's model: (path within options, message) pairs."""

    def __init__(self, errors: Sequence[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(m for _, m in errors))
        self.errors = list(errors)


def validate_options(model: type[BaseModel], options: Mapping[str, Any], plugin: str,
                     secrets: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The options ``model`` accepts, as constructor arguments (only those given). An
    error never shows the value of an option named in ``secrets``."""
    try:
        validated = model.model_validate(dict(options))
    except ValidationError as err:
        raise OptionErrors([_issue(e, model, plugin, secrets) for e in err.errors()]
                           ) from None
    if isinstance(validated, PluginOptions):
        return validated.given()
    return {name: getattr(validated, name) for name in validated.model_fields_set}


def _issue(error: Any, model: type[BaseModel], plugin: str, secrets: frozenset[str]
           ) -> tuple[tuple[str | int, ...], str]:
    loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
    dotted = ".".join(str(p) for p in loc) or "options"
    valid = ", ".join(model.model_fields)
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return loc, (f"options.{dotted}: unknown option of the {plugin} plugin "
                     f"(valid: {valid}; see docs/plugins.md)")
    if kind == "missing":
        return loc, f"options.{dotted}: required option of the {plugin} plugin is missing"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    got = error.get("input")
    secret = bool(loc) and loc[0] in secrets
    shown = secret or isinstance(got, dict | list) or got is None or repr(got) in message
    return loc, f"options.{dotted}: {message}" + ("" if shown else f" (got {got!r})")
