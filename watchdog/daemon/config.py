"""The daemon's configuration file (``watchdog.yaml``), validated with file:line errors.

Found at ``--config FILE``, else ``$WATCHDOG_CONFIG``, else the embedded default below (the
demo set-up: scrape source, file actuator into a state folder). Example::

    db: /var/lib/rollout-watchdog/journal.db   # default: $WATCHDOG_DB, else rollout-watchdog.db
                                               # or postgresql://user@host/db (several instances)
    state_dir: /run/rollout-watchdog           # "{state_dir}" in plugin options (<db>.state)
    rules: [/etc/rollout-watchdog/rules]        # files or folders; default: the shipped rules
    source:                                     # one metrics source: plugin name + options
      plugin: prometheus
      options: {url: "http://127.0.0.1:9090", token: {from_credential: prometheus_token}}
    actuators:                                  # every decision is applied through all of them
      - plugin: file
        options: {path: "{state_dir}/{module}.env", format: env}
      - plugin: webhook
        options: {url: "https://flags.internal/rollout/{module}",
                  secret: {from_env: FLAGS_WEBHOOK_SECRET}}
    notifiers: [{plugin: log}]                  # default: log
    modules:                                    # what to run; a bare name is allowed
      - {name: checkout, auto_start: true, interval: 10s}
      - search
    interval: 15s           # overrides every module's evaluation interval (module's wins)
    schedule: {align: true, offset: 2s, misfire_grace: null}
    clock: {kind: system}   # or {kind: replay, start: 0, step: 10s, end: 3600, pace: 50ms}
    outbox: {poll_interval: 250ms, backoff: 500ms, max_backoff: 1m, deadline: 10s,
             stuck_after: 5s}   # per actuator call; a rollback not applied by then: alerted
    api: {enabled: true, host: 127.0.0.1, port: 8787}   # /metrics, /status, control
    lease: {ttl: 15s, instance: host-a}   # several instances on one PostgreSQL journal
    log_level: info

Relative ``db``, ``state_dir`` and ``rules`` paths are taken from the config file's folder.
Secrets: an option value written ``{from_env: NAME}``, ``{from_file: PATH}`` or
``{from_credential: NAME}`` (``$CREDENTIALS_DIRECTORY/NAME``, systemd ``LoadCredential=``)
is read when the plugins are built and handed over as a ``SecretStr``; so is any inline
value of a key named ``secret``, ``token``, ``password`` or ``webhook_url``. Option values
are never logged. Plugin names are checked against the installed entry points.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from watchdog import plugins
from watchdog.config import limits
from watchdog.config.loader import RuleSet, load_default_rules, load_paths
from watchdog.config.schema import Duration
from watchdog.config.yamlload import Located, load_yaml
from watchdog.errors import ConfigError, Issue, PluginError, UnknownModule
from watchdog.journal import is_postgres

DEFAULT_NAME = "<embedded default config>"
DEFAULT_CONFIG = """\
# The embedded default: the demo. Two local /metrics endpoints, the shipped default
# rules, flags as JSON files in the state folder, decisions logged.
source:
  plugin: scrape
  options:
    endpoints:
      checkout: {v1: "http://127.0.0.1:9101/metrics", v2: "http://127.0.0.1:9102/metrics"}
actuators:
  - plugin: file
    options: {path: "{state_dir}/{module}.flags.json", format: json}
notifiers:
  - plugin: log
modules:
  - {name: checkout, auto_start: true}
"""
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$", max_length=200)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PluginRef(Frozen):
    plugin: Name
    options: dict[str, Any] = Field(default_factory=dict)

    def __repr__(self) -> str:  # options may hold secrets
        return f"PluginRef(plugin={self.plugin!r}, options=<{len(self.options)} keys>)"

    __str__ = __repr__


def _module_entry(value: object) -> object:
    return {"name": value} if isinstance(value, str) else value


class ModuleConfig(Frozen):
    name: Name
    auto_start: bool = False
    interval: Duration | None = Field(default=None, gt=0)


class ScheduleConfig(Frozen):
    align: bool = True  # fire at whole multiples of the interval (wall clock) + offset
    offset: Duration = Field(default=0.0, ge=0)
    misfire_grace: Duration | None = Field(default=None, gt=0)  # None: one interval


class ClockConfig(Frozen):
    kind: Literal["system", "replay"] = "system"
    start: float = 0.0
    step: Duration | None = Field(default=None, gt=0)
    end: float | None = None
    pace: Duration = Field(default=0.05, gt=0)

    @model_validator(mode="after")
    def _replay(self) -> ClockConfig:
        if self.kind == "replay" and self.step is None:
            raise ValueError("step: a replay clock needs the step (simulated seconds per tick)")
        return self


class OutboxConfig(Frozen):
    poll_interval: Duration = Field(default=0.25, gt=0, le=0.25)
    backoff: Duration = Field(default=0.5, gt=0)
    max_backoff: Duration = Field(default=60.0, gt=0)
    deadline: Duration = Field(default=10.0, gt=0)  # one actuator call, then abandoned
    stuck_after: Duration = Field(default=5.0, gt=0)  # a rollback not applied: announced


def _http_url(value: object) -> object:
    if value is not None and (not isinstance(value, str)
                              or not value.startswith(("http://", "https://"))):
        raise ValueError(f"an http:// or https:// URL (the web view's address as people "
                         f"open it), got {value!r}")
    return value


class ApiConfig(Frozen):
    enabled: bool = False
    host: str | None = None  # default: WATCHDOG_API_HOST, else 127.0.0.1
    port: int | None = Field(default=None, ge=0, le=65535)  # default: WATCHDOG_API_PORT
    # where people open the web view (behind a proxy, say): Slack's approve links
    public_url: Annotated[str | None, BeforeValidator(_http_url)] = None


class LeaseConfig(Frozen):
    """How long a module's lease lasts without renewal (default: 1.5 x the module's tick
    period, at least :data:`MIN_LEASE_TTL`), and this instance's name in the lease table
    (default: ``$WATCHDOG_INSTANCE``, else host:pid)."""

    ttl: Duration | None = Field(default=None, gt=0)
    instance: str | None = Field(default=None, min_length=1, max_length=200)


class DaemonConfig(Frozen):
    db: str | None = None  # a path, or a postgresql:// URL
    state_dir: Path | None = None
    rules: list[Path] = Field(default_factory=list)
    source: PluginRef
    actuators: list[PluginRef] = Field(min_length=1)
    notifiers: list[PluginRef] = Field(default_factory=lambda: [PluginRef(plugin="log")])
    modules: list[Annotated[ModuleConfig, BeforeValidator(_module_entry)]] = Field(
        min_length=1)
    interval: Duration | None = Field(default=None, gt=0)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    clock: ClockConfig = Field(default_factory=ClockConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    lease: LeaseConfig = Field(default_factory=LeaseConfig)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _unique(self) -> DaemonConfig:
        names = [m.name for m in self.modules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"modules: {', '.join(dup)} listed more than once")
        return self


@dataclass(frozen=True)
class Loaded:
    """A validated configuration with everything it names resolved."""

    config: DaemonConfig
    file: str
    located: Located
    db: str
    state_dir: str
    rules: RuleSet

    def line_of(self, *path: str | int) -> int:
        return self.located.line_of(path)

    def where(self, *path: str | int) -> str:
        line = self.line_of(*path)
        return f"{self.file}:{line}" if line else self.file

    def interval_of(self, module: str) -> float:
        """Seconds between evaluations of ``module`` (wall clock)."""
        for m in self.config.modules:
            if m.name == module and m.interval is not None:
                return m.interval
        if self.config.interval is not None:
            return self.config.interval
        return self.rules.for_module(module).interval

    @property
    def module_names(self) -> list[str]:
        return [m.name for m in self.config.modules]


def config_text(path: str | None) -> tuple[str, str]:
    """(file name, text) of the config at ``path``, or of the embedded default."""
    if path is None:
        return DEFAULT_NAME, DEFAULT_CONFIG
    try:
        return path, limits.read_text(path, limits.FILE_BYTES)
    except OSError as err:
        raise ConfigError([Issue(path, 0, f"cannot read: {err.strerror or err}")]) from None
    except (UnicodeDecodeError, limits.LimitValueError) as err:
        raise ConfigError([Issue(path, 0, f"cannot read: {err}")]) from None


def load_config(path: str | None) -> Loaded:
    """Read, validate and resolve the configuration; ConfigError lists every problem."""
    file, text = config_text(path)
    located = load_yaml(text, file)
    if not isinstance(located.data, dict):
        raise ConfigError([Issue(file, located.line_of(()),
                                 "expected a mapping (source, actuators, modules, ...)")])
    try:
        config = DaemonConfig.model_validate(located.data)
    except ValidationError as err:
        raise ConfigError([Issue(file, located.line_of(tuple(e["loc"])), _describe(e))
                           for e in err.errors()]) from None
    base = Path(file).parent if path is not None else Path.cwd()
    db: str | Path
    if config.db is not None and is_postgres(config.db):
        db = config.db
        state = _resolve(base, config.state_dir) if config.state_dir is not None \
            else base / "rollout-watchdog.state"
    else:
        db = _resolve(base, Path(config.db)) if config.db is not None else _default_db()
        state = _resolve(base, config.state_dir) if config.state_dir is not None \
            else db.with_name(db.stem + ".state")
    try:
        rules = load_paths([_resolve(base, p) for p in config.rules]) if config.rules \
            else load_default_rules()
    except ConfigError as err:  # already file:line of the rule files
        raise ConfigError([Issue(file, located.line_of(("rules",)),
                                 "the rules named here are invalid (below)"), *err.issues]
                          ) from None
    issues = _check_names(file, located, config, rules)
    if issues:
        raise ConfigError(issues)
    return Loaded(config, file, located, str(db), str(state), rules)


def _default_db() -> Path:
    """$WATCHDOG_DB, else rollout-watchdog.db. Imported here, not at the top: a daemon
    whose config names its db never loads pydantic-settings (1.3 MiB resident)."""
    from watchdog.settings import load_settings

    return Path(load_settings().db)


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def _check_names(file: str, located: Located, config: DaemonConfig,
                 rules: RuleSet) -> list[Issue]:
    issues: list[Issue] = []
    for i, m in enumerate(config.modules):
        try:
            rules.for_module(m.name)
        except UnknownModule as err:
            issues.append(Issue(file, located.line_of(("modules", i)), str(err)))
    refs: list[tuple[str, tuple[str | int, ...], PluginRef]] = [
        ("watchdog.sources", ("source",), config.source)]
    refs += [("watchdog.actuators", ("actuators", i), r) for i, r in enumerate(config.actuators)]
    refs += [("watchdog.notifiers", ("notifiers", i), r) for i, r in enumerate(config.notifiers)]
    installed = {group: plugins.available(group) for group in plugins.GROUPS}
    for group, where, ref in refs:
        if ref.plugin not in installed[group]:
            try:
                plugins.load(group, ref.plugin)
            except PluginError as err:
                issues.append(Issue(file, located.line_of((*where, "plugin")),
                                    f"{_dotted(where)}.plugin: {err}"))
    return issues


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names of the config model at ``loc`` (list indexes skipped)."""
    model: Any = DaemonConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        found = [t for t in _types(field.annotation)
                 if isinstance(t, type) and issubclass(t, BaseModel)]
        if not found:
            return []
        model = found[0]
    return list(model.model_fields)


def _types(annotation: Any) -> list[Any]:
    """``annotation`` and the types inside it (list[X], X | None, Annotated[X, ...])."""
    out = [annotation]
    for arg in getattr(annotation, "__args__", ()):
        out += _types(arg)
    origin = getattr(annotation, "__origin__", None)
    if origin is not None:
        out.append(origin)
    return out


def _describe(error: Any) -> str:
    """One pydantic error in the words of the rule loader."""
    loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
    where = _dotted(loc) or "config"
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return f"{where}: unknown field (valid: {', '.join(_fields_at(loc[:-1]))})"
    if kind == "missing":
        return f"{where}: required field is missing"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    got = error.get("input")
    shown = isinstance(got, dict | list) or got is None or repr(got) in message
    return f"{where}: {message}" + ("" if shown else f" (got {got!r})")
