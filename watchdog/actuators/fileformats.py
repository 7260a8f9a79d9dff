"""The four flag-file formats of the ``file`` actuator: json, yaml, env and flagd.

Each format renders one module's flags *into* the existing content of the file (other modules'
entries and any foreign keys are kept, so several modules may share one file) and parses one
module's flags back out. Unparseable existing content is replaced (and logged): a corrupt flag
file must never stop a rollback. The kill switch is global: one key per file.

json / yaml (``kill_switch`` key configurable)::

    {"kill_switch": false,
     "modules": {"checkout": {"version": "v2", "traffic_percent": 25, "decision_id": "42"}}}

env, a systemd ``EnvironmentFile`` (module upper-cased, other characters to ``_``, optional
prefix; the kill switch variable is configurable)::

    CHECKOUT_VERSION=v2
    CHECKOUT_TRAFFIC=25
    CHECKOUT_DECISION_ID=42
    WATCHDOG_KILL_SWITCH=0

flagd (OpenFeature flag definitions, https://flagd.dev/schema/v0/flags.json): per module a
string flag ``<module>-version`` whose ``fractional`` targeting sends ``traffic_percent`` of
evaluation subjects to ``v2`` (integer weights: out of 100, or out of 10000 for fractional
percentages; an evaluation without a targeting key gets ``defaultVariant``, which is ``v2`` only
at 100 %), a numeric flag ``<module>-traffic`` for routers that split themselves, and one
global boolean flag ``force-v1`` (the kill switch). ``metadata`` carries the decision id.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Protocol

import yaml

from watchdog.actuators import FlagState
from watchdog.actuators.flagcodec import (
    bool_text,
    parse_bool,
    parse_percent,
    parse_version,
    percent_text,
    percent_value,
)
from watchdog.errors import ActuatorError

log = logging.getLogger(__name__)

FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
MANAGED_BY = "rollout-watchdog"
FORMATS = ("json", "yaml", "env", "flagd")


class FileFormat(Protocol):
    def render(self, existing: str | None, state: FlagState) -> str: ...

    def parse(self, text: str, module: str) -> FlagState | None: ...


def _load_mapping(existing: str | None, loader: Any, where: str) -> dict[str, Any]:
    if existing is None or not existing.strip():
        return {}
    try:
        doc = loader(existing)
    except ValueError as err:  # json.JSONDecodeError and yaml.YAMLError alike
        log.warning("%s: existing flag file is unreadable (%s); rewriting it", where, err)
        return {}
    if not isinstance(doc, dict):
        log.warning("%s: existing flag file is not a mapping; rewriting it", where)
        return {}
    return doc


def _yaml_load(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(str(err)) from err


class StructuredFormat:
    """json and yaml: one document, ``modules`` keyed by module name."""

    def __init__(self, kind: str, kill_switch_key: str) -> None:
        self.kind = kind
        self.kill_key = kill_switch_key

    def _load(self, text: str) -> Any:
        return json.loads(text) if self.kind == "json" else _yaml_load(text)

    def render(self, existing: str | None, state: FlagState) -> str:
        doc = _load_mapping(existing, self._load, self.kind)
        modules = doc.get("modules")
        if not isinstance(modules, dict):
            modules = {}
        modules[state.module] = {"version": state.version,
                                 "traffic_percent": percent_value(state.traffic_percent),
                                 "decision_id": state.decision_id}
        doc = {self.kill_key: state.kill_switch, "modules": modules,
               **{k: v for k, v in doc.items() if k not in (self.kill_key, "modules")}}
        if self.kind == "json":
            return json.dumps(doc, indent=2) + "\n"
        return f"# managed by {MANAGED_BY}\n" + yaml.safe_dump(doc, sort_keys=False)

    def parse(self, text: str, module: str) -> FlagState | None:
        where = f"{self.kind} flag file"
        try:
            doc = self._load(text)
        except ValueError as err:
            raise ActuatorError(f"{where}: cannot parse: {err}") from err
        if not isinstance(doc, dict):
            raise ActuatorError(f"{where}: top level is not a mapping")
        modules = doc.get("modules")
        entry = modules.get(module) if isinstance(modules, dict) else None
        if entry is None:
            return None
        if not isinstance(entry, dict):
            raise ActuatorError(f"{where}: entry for {module!r} is not a mapping")
        where = f"{where}, module {module!r}"
        return FlagState(module, parse_version(entry.get("version"), where),
                         parse_percent(entry.get("traffic_percent"), where),
                         parse_bool(doc.get(self.kill_key, False), where),
                         str(entry.get("decision_id", "")))


_ENV_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_ENV_SAFE = re.compile(r"^[A-Za-z0-9_.,:/@%+-]*$")


def env_name(prefix: str, module: str, suffix: str) -> str:
    """``checkout-api`` -> ``CHECKOUT_API_<suffix>`` (with the prefix in front)."""
    name = prefix + re.sub(r"[^A-Za-z0-9]", "_", module).upper()
    return ("_" + name if name[:1].isdigit() else name) + "_" + suffix


def _env_quote(value: str) -> str:
    """Double quotes, escaping what both systemd and a POSIX shell expand: \\ " $ `.

    Line breaks become spaces (an EnvironmentFile value is one line)."""
    value = value.replace("\r", " ").replace("\n", " ")
    if _ENV_SAFE.match(value):
        return value
    return '"' + re.sub(r'(["\\$`])', r"\\\1", value) + '"'


def _env_unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r'\\(["\\$`])', r"\1", raw[1:-1])
    return raw


def parse_env(text: str) -> dict[str, str]:
    """Assignments of an EnvironmentFile (comments and blank lines skipped; last one wins)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith(("#", ";")):
            continue
        match = _ENV_LINE.match(line)
        if match:
            values[match[1]] = _env_unquote(match[2])
    return values


class EnvFormat:
    def __init__(self, prefix: str, kill_switch_key: str) -> None:
        self.prefix = prefix
        self.kill_key = kill_switch_key

    def keys(self, module: str) -> tuple[str, str, str]:
        return (env_name(self.prefix, module, "VERSION"), env_name(self.prefix, module, "TRAFFIC"),
                env_name(self.prefix, module, "DECISION_ID"))

    def render(self, existing: str | None, state: FlagState) -> str:
        version_key, traffic_key, decision_key = self.keys(state.module)
        wanted = {version_key: state.version,
                  traffic_key: percent_text(state.traffic_percent),
                  decision_key: _env_quote(state.decision_id),
                  self.kill_key: bool_text(state.kill_switch)}
        lines = (existing or f"# managed by {MANAGED_BY}\n").splitlines()
        out: list[str] = []
        for line in lines:
            match = None if line.lstrip().startswith(("#", ";")) else _ENV_LINE.match(line)
            if match and match[1] in wanted:  # replace in place; later duplicates are dropped
                out.append(f"{match[1]}={wanted.pop(match[1])}")
                continue
            if match and match[1] in (version_key, traffic_key, decision_key, self.kill_key):
                continue
            out.append(line)
        out.extend(f"{key}={value}" for key, value in wanted.items())
        return "\n".join(out) + "\n"

    def parse(self, text: str, module: str) -> FlagState | None:
        values = parse_env(text)
        version_key, traffic_key, decision_key = self.keys(module)
        if version_key not in values:
            return None
        where = f"env flag file, module {module!r}"
        return FlagState(module, parse_version(values[version_key], where),
                         parse_percent(values.get(traffic_key), where),
                         parse_bool(values.get(self.kill_key, "0"), where),
                         values.get(decision_key, ""))


def fractional_weights(pct: float) -> tuple[int, int]:
    """(v2, v1) integer weights: out of 100 for whole percentages, else out of 10000."""
    if float(pct).is_integer():
        return int(pct), 100 - int(pct)
    v2 = round(pct * 100)
    return v2, 10000 - v2


class FlagdFormat:
    def __init__(self, kill_switch_key: str) -> None:
        self.kill_key = kill_switch_key

    def render(self, existing: str | None, state: FlagState) -> str:
        doc = _load_mapping(existing, json.loads, "flagd")
        flags = doc.get("flags")
        if isinstance(flags, list):  # flagd's array form: convert to the map form
            flags = {f["key"]: {k: v for k, v in f.items() if k != "key"}
                     for f in flags if isinstance(f, dict) and "key" in f}
        if not isinstance(flags, dict):
            flags = {}
        meta = {"managedBy": MANAGED_BY, "decisionId": state.decision_id}
        pct = state.traffic_percent
        version_flag: dict[str, Any] = {
            "state": "ENABLED",
            "variants": {"v1": "v1", "v2": "v2"},
            "defaultVariant": "v2" if state.version == "v2" and pct >= 100 else "v1",
            "metadata": {**meta, "version": state.version},
        }
        if state.version == "v2" and 0 < pct < 100 and not state.kill_switch:
            v2, v1 = fractional_weights(pct)
            version_flag["targeting"] = {"fractional": [["v2", v2], ["v1", v1]]}
        label = percent_text(pct)
        flags[f"{state.module}-version"] = version_flag
        flags[f"{state.module}-traffic"] = {
            "state": "ENABLED", "variants": {label: percent_value(pct)},
            "defaultVariant": label, "metadata": meta}
        flags[self.kill_key] = {
            "state": "ENABLED", "variants": {"on": True, "off": False},
            "defaultVariant": "on" if state.kill_switch else "off", "metadata": meta}
        doc = {"$schema": FLAGD_SCHEMA, "flags": flags,
               **{k: v for k, v in doc.items() if k not in ("$schema", "flags")}}
        return json.dumps(doc, indent=2) + "\n"

    def parse(self, text: str, module: str) -> FlagState | None:
        where = f"flagd flag file, module {module!r}"
        try:
            doc = json.loads(text)
            flags = doc["flags"]
            version_flag = flags.get(f"{module}-version")
            if version_flag is None:
                return None
            traffic_flag = flags[f"{module}-traffic"]
            pct = traffic_flag["variants"][traffic_flag["defaultVariant"]]
            kill_flag = flags.get(self.kill_key)
            kill = bool(kill_flag["variants"][kill_flag["defaultVariant"]]) if kill_flag else False
            meta = version_flag.get("metadata") or {}
            version = meta.get("version", version_flag["defaultVariant"])
            decision_id = str(meta.get("decisionId", ""))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ActuatorError(f"{where}: malformed flag definitions: {err!r}") from err
        return FlagState(module, parse_version(version, where), parse_percent(pct, where),
                         kill, decision_id)


def make_format(kind: str, *, prefix: str = "", kill_switch_key: str | None = None) -> FileFormat:
    if kind in ("json", "yaml"):
        return StructuredFormat(kind, kill_switch_key or "kill_switch")
    if kind == "env":
        return EnvFormat(prefix, kill_switch_key or "WATCHDOG_KILL_SWITCH")
    if kind == "flagd":
        return FlagdFormat(kill_switch_key or "force-v1")
    raise ValueError(f"unknown flag file format {kind!r} (one of {', '.join(FORMATS)})")
