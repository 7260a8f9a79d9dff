"""Building the plugins a configuration names: options resolved, secrets read, errors located.

A plugin that fails to build (bad options, missing secret) is a :class:`ConfigError` at
the line of its entry in the config file; messages name options, never their values.
:class:`PluginSet` keeps the instances; on reload, an entry whose plugin and resolved
options did not change keeps its instance (the scrape source's counter history, the
command actuator's confirmed state survive a reload).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from watchdog import pluginbase, plugins
from watchdog.actuators import Actuator
from watchdog.actuators.base import CONTRACT as ACTUATOR_CONTRACT
from watchdog.config import limits
from watchdog.daemon.config import Loaded, PluginRef
from watchdog.daemon.ticks import rules_with_intervals
from watchdog.errors import ConfigError, Issue, PluginError, WatchdogError
from watchdog.notifiers import Notifier
from watchdog.notifiers.base import CONTRACT as NOTIFIER_CONTRACT
from watchdog.sources import Source
from watchdog.sources.base import CONTRACT as SOURCE_CONTRACT

log = logging.getLogger(__name__)

SECRET_KEYS = frozenset({"secret", "token", "password", "webhook_url"})
SECRET_FORMS = ("from_env", "from_file", "from_credential")

Where = tuple[str | int, ...]


class _Missing(Exception):
    def __init__(self, where: Where, message: str) -> None:
        self.where = where
        self.message = message


def resolve(value: Any, where: Where, state_dir: str, env: Mapping[str, str],
            secrets: frozenset[str] = SECRET_KEYS) -> Any:
    """Option values with secrets read and ``{state_dir}`` filled in; an inline value of
    an option named in ``secrets`` becomes a SecretStr."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in SECRET_FORMS:
            return _secret(next(iter(value)), next(iter(value.values())), where, env)
        out: dict[str, Any] = {}
        for key, item in value.items():
            resolved = resolve(item, (*where, key), state_dir, env, secrets)
            if key in secrets and isinstance(resolved, str):
                resolved = SecretStr(resolved)
            out[key] = resolved
        return out
    if isinstance(value, list):
        return [resolve(v, (*where, i), state_dir, env, secrets) for i, v in enumerate(value)]
    if isinstance(value, str):
        return value.replace("{state_dir}", state_dir)
    return value


def _secret(form: str, name: Any, where: Where, env: Mapping[str, str]) -> SecretStr:
    if not isinstance(name, str) or not name:
        raise _Missing(where, f"{form} needs a name or path")
    if form == "from_env":
        if name not in env:
            raise _Missing(where, f"environment variable {name} is not set")
        return SecretStr(env[name])
    if form == "from_credential":
        folder = env.get("CREDENTIALS_DIRECTORY")
        if not folder:
            raise _Missing(where, f"credential {name}: $CREDENTIALS_DIRECTORY is not set "
                                  "(systemd LoadCredential=)")
        path = Path(folder) / name
    else:
        path = Path(name)
    try:  # a regular file of at most SECRET_BYTES (not /dev/zero, not a FIFO)
        return SecretStr(limits.read_text(path, limits.SECRET_BYTES).rstrip("\r\n"))
    except (OSError, UnicodeDecodeError) as err:
        detail = err.strerror if isinstance(err, OSError) and err.strerror else (
            str(err) if isinstance(err, limits.ReadRefused) else "unreadable")
        raise _Missing(where, f"cannot read secret file {path}: {detail}") from None


@dataclass
class _Built:
    group: str
    plugin: str
    options: dict[str, Any]
    instance: Any


def _group(where: Where) -> str:
    return {"source": "watchdog.sources", "actuators": "watchdog.actuators",
            "notifiers": "watchdog.notifiers"}[str(where[0])]


class PluginSet:
    """The source, actuators and notifiers of one configuration."""

    def __init__(self, source: Source, actuators: list[Actuator], notifiers: list[Notifier],
                 built: list[_Built]) -> None:
        self.source = source
        self.actuators = actuators
        self.notifiers = notifiers
        self._built = built

    @classmethod
    def build(cls, loaded: Loaded, previous: PluginSet | None = None,
              env: Mapping[str, str] | None = None) -> PluginSet:
        refs: list[tuple[Where, PluginRef]] = [(("source",), loaded.config.source)]
        refs += [(("actuators", i), r) for i, r in enumerate(loaded.config.actuators)]
        refs += [(("notifiers", i), r) for i, r in enumerate(loaded.config.notifiers)]
        built = _build(loaded, refs, previous._built if previous is not None else [],
                       os.environ if env is None else env)
        n = len(loaded.config.actuators)
        plan_source(built[0].instance, loaded)
        return cls(built[0].instance, [b.instance for b in built[1:1 + n]],
                   [b.instance for b in built[1 + n:]], built)

    def instances(self) -> list[Any]:
        return [b.instance for b in self._built]

    def unused_by(self, other: PluginSet) -> list[Any]:
        """Instances of this set that ``other`` does not keep (to close after a reload)."""
        kept = {id(b.instance) for b in other._built}
        return [b.instance for b in self._built if id(b.instance) not in kept]


def plan_source(source: Any, loaded: Loaded) -> None:
    """Tell a source that batches (``plan(modules, offset)``, the prometheus source) which
    modules the daemon ticks and on which grid, so that one query per interval serves them
    all. Only for ticks aligned to the wall clock: unaligned or replayed ticks do not
    share a grid."""
    plan = getattr(source, "plan", None)
    config = loaded.config
    if not callable(plan) or config.clock.kind != "system" or not config.schedule.align:
        return
    rules = rules_with_intervals(loaded)
    modules = [rules.for_module(name) for name in loaded.module_names]
    plan(modules, config.schedule.offset)
    too_long = getattr(source, "too_long", None)
    if callable(too_long) and getattr(source, "batch", False):
        from watchdog.engine import tick_windows

        for line in too_long(modules, tick_windows(modules)):
            log.warning("%s", line)


def build_source(loaded: Loaded, env: Mapping[str, str] | None = None) -> Source:
    """Only the source (the CLI's live baseline capture)."""
    refs: list[tuple[Where, PluginRef]] = [(("source",), loaded.config.source)]
    source: Source = _build(loaded, refs, [], os.environ if env is None else env)[0].instance
    return source


def build_actuators(loaded: Loaded, env: Mapping[str, str] | None = None) -> list[Actuator]:
    """Only the actuators (the CLI's ``--apply``)."""
    refs: list[tuple[Where, PluginRef]] = [(("actuators", i), r) for i, r
                                           in enumerate(loaded.config.actuators)]
    return [b.instance for b in _build(loaded, refs, [], os.environ if env is None else env)]


def _build(loaded: Loaded, refs: list[tuple[Where, PluginRef]], previous: list[_Built],
           env: Mapping[str, str]) -> list[_Built]:
    issues: list[Issue] = []
    built: list[_Built] = []
    reusable = list(previous)
    for where, ref in refs:
        group = _group(where)
        try:
            factory = load_checked(group, ref.plugin)
            options = resolve(ref.options, (*where, "options"), loaded.state_dir, env,
                              SECRET_KEYS | pluginbase.secret_names(factory))
        except _Missing as err:
            issues.append(Issue(loaded.file, loaded.line_of(*err.where),
                                f"{_dotted(err.where)}: {err.message}"))
            continue
        except PluginError as err:
            issues.append(Issue(loaded.file, loaded.line_of(*where),
                                f"{_dotted(where)}: {err}"))
            continue
        same = next((b for b in reusable if (b.group, b.plugin, b.options)
                     == (group, ref.plugin, options)), None)
        if same is not None:
            reusable.remove(same)
            built.append(same)
            continue
        try:
            instance = _construct(factory, ref.plugin, options, loaded.db)
        except pluginbase.OptionErrors as err:
            issues += [Issue(loaded.file, loaded.line_of(*where, "options", *loc),
                             f"{_dotted(where)}.{message}") for loc, message in err.errors]
            continue
        except ConfigError as err:
            issues += [Issue(loaded.file, loaded.line_of(*where),
                             f"{_dotted(where)} ({ref.plugin}): {i.message}")
                       for i in err.issues]
            continue
        except Exception as err:  # ScenarioError, TypeError, a plugin's own errors
            if not isinstance(err, PluginError | WatchdogError | TypeError | ValueError
                              | OSError):
                err = RuntimeError(f"{type(err).__name__}: {err}")
            issues.append(Issue(loaded.file, loaded.line_of(*where),
                                f"{_dotted(where)} ({ref.plugin}): {err}"))
            continue
        built.append(_Built(group, ref.plugin, options, instance))
    if issues:
        raise ConfigError(issues)
    return built


CONTRACTS = {"watchdog.sources": SOURCE_CONTRACT, "watchdog.actuators": ACTUATOR_CONTRACT,
             "watchdog.notifiers": NOTIFIER_CONTRACT}


def load_checked(group: str, name: str) -> Any:
    """The plugin class of entry point ``name``, checked against its kind's contract
    (PluginError: unknown, failed to load, or not a plugin of this kind)."""
    factory = plugins.load(group, name)
    pluginbase.check_contract(CONTRACTS[group], f"{group}:{name}", factory)
    return factory


def _construct(factory: Any, name: str, options: dict[str, Any], db: str) -> Any:
    """Options validated by the plugin's model (OptionErrors), then its ``from_config``
    (the constructor when it has none)."""
    model = pluginbase.options_model(factory)
    if model is not None:
        options = pluginbase.validate_options(model, options, name,
                                              pluginbase.secret_names(factory))
    if callable(getattr(factory, "from_config", None)):
        return factory.from_config(options, journal_path=db)
    return factory(**options)


def close_plugin(instance: Any) -> None:
    """Close what a plugin holds open (HTTP clients), if it says how."""
    close = getattr(instance, "close", None)
    if callable(close):  # closing an old plugin after a reload must not stop the daemon
        with contextlib.suppress(Exception):
            close()


def _dotted(loc: Where) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
