"""Process settings from the environment (``WATCHDOG_*``), a .env file, or a secrets folder.

Secrets are ``SecretStr`` and never printed. Under systemd, ``LoadCredential=`` files in
``$CREDENTIALS_DIRECTORY`` are read as secrets (file name = setting name).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _secrets_dir() -> str | None:
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    return folder if folder and Path(folder).is_dir() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WATCHDOG_", extra="ignore",
                                      secrets_dir=_secrets_dir())

    db: Path = Field(default=Path("rollout-watchdog.db"),
                     description="SQLite journal file")
    rules: list[Path] = Field(default_factory=lambda: [Path("rules")],
                              description="Rule files or folders")


def load_settings(**overrides: object) -> Settings:
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]
