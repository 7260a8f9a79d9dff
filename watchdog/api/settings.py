"""Settings of the HTTP API (``WATCHDOG_API_*``) and where its bearer token comes from.

The token is read, in this order, from: the ``token`` setting (``WATCHDOG_API_TOKEN``), the
file named by ``token_file`` (``WATCHDOG_API_TOKEN_FILE``), and the systemd credential
``$CREDENTIALS_DIRECTORY/api_token`` (``LoadCredential=api_token:...``). It is a
``SecretStr``: never logged, never in a repr or an error message.

The API listens on 127.0.0.1 unless told otherwise, and refuses any other address when
no token is configured (:func:`check_bind`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from watchdog.config import limits
from watchdog.errors import ConfigError, Issue

CREDENTIAL_NAME = "api_token"
MIN_TOKEN_LENGTH = 16


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WATCHDOG_API_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address to listen on")
    port: int = Field(default=8787, ge=0, le=65535, description="Port (0: any free one)")
    token: SecretStr | None = Field(default=None, description="Bearer token for control")
    token_file: Path | None = Field(default=None, description="File holding the token")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)


def load_api_token(settings: ApiSettings, env: Mapping[str, str] | None = None
                   ) -> SecretStr | None:
    """The control token from the setting, the token file, or the systemd credential."""
    env = os.environ if env is None else env
    if settings.token is not None and settings.token.get_secret_value().strip():
        return _checked(SecretStr(settings.token.get_secret_value().strip()),
                        "WATCHDOG_API_TOKEN")
    if settings.token_file is not None:
        return _checked(_read(settings.token_file), str(settings.token_file))
    folder = env.get("CREDENTIALS_DIRECTORY")
    if folder and (Path(folder) / CREDENTIAL_NAME).is_file():
        path = Path(folder) / CREDENTIAL_NAME
        return _checked(_read(path), str(path))
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def check_bind(host: str, token: SecretStr | None) -> None:
    """Refuse to listen beyond loopback without a token (anyone could read the state)."""
    if token is None and not is_loopback(host):
        raise ConfigError([Issue("WATCHDOG_API_HOST", 0,
                                 f"refusing to serve the API on {host!r} without a token: "
                                 "set WATCHDOG_API_TOKEN (or WATCHDOG_API_TOKEN_FILE, or the "
                                 "systemd credential api_token), or listen on 127.0.0.1")])


def _read(path: Path) -> SecretStr:
    try:  # a regular file of at most SECRET_BYTES (not /dev/zero, not a FIFO)
        value = limits.read_text(path, limits.SECRET_BYTES).strip()
    except (OSError, UnicodeDecodeError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else (
            str(err) if isinstance(err, limits.ReadRefused) else type(err).__name__)
        raise ConfigError([Issue(str(path), 0, f"cannot read the API token: {why}")]
                          ) from None
    return SecretStr(value)


def _checked(token: SecretStr, where: str) -> SecretStr:
    value = token.get_secret_value()
    if len(value) < MIN_TOKEN_LENGTH:
        raise ConfigError([Issue(where, 0, f"the API token is too short (at least "
                                           f"{MIN_TOKEN_LENGTH} characters; e.g. "
                                           "`openssl rand -hex 32`)")])
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in value):
        raise ConfigError([Issue(where, 0, "the API token must be printable ASCII without "
                                           "spaces (it travels in an HTTP header)")])
    return token
