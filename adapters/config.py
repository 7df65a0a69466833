"""Configuration: environment variables, over an optional TOML file, over defaults.

The TOML file is ``parley.toml`` in the working directory or the path in ``PARLEY_CONFIG``; its keys
are the variable names in lower case (``chat_model = "..."``) or as written (``PARLEY_CHAT_MODEL``).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SYSTEM_PROMPT = (
    "You are Parley, a helpful assistant in a Discord server. Answer clearly and briefly; "
    "use Markdown that Discord renders."
)


class ConfigError(Exception):
    """A setting is wrong; the message names it and says what to do."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    event_store: str = "sqlite"
    discord_token: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    openai_api_key: str | None = field(default=None, repr=False)
    chat_model: str = "gpt-4o-mini"
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    context_turns: int = 20
    max_input_chars: int = 4000
    llm_timeout: float = 60.0
    llm_retries: int = 3
    responders: int = 4
    channels: frozenset[str] = frozenset()
    command_prefix: str = "!"
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    stream_edit_interval: float = 1.0


_KEYS = {
    "PARLEY_DATA_DIR": "data_dir", "PARLEY_EVENT_STORE": "event_store", "DISCORD_TOKEN": "discord_token",
    "OPENAI_BASE_URL": "openai_base_url", "OPENAI_API_KEY": "openai_api_key",
    "PARLEY_CHAT_MODEL": "chat_model", "PARLEY_SYSTEM_PROMPT": "system_prompt",
    "PARLEY_CONTEXT_TURNS": "context_turns", "PARLEY_MAX_INPUT_CHARS": "max_input_chars",
    "PARLEY_LLM_TIMEOUT": "llm_timeout", "PARLEY_LLM_RETRIES": "llm_retries",
    "PARLEY_RESPONDERS": "responders", "PARLEY_CHANNELS": "channels", "PARLEY_PREFIX": "command_prefix",
    "DISCORD_API_BASE": "discord_api_base", "DISCORD_GATEWAY_URL": "discord_gateway_url",
    "PARLEY_STREAM_EDIT_INTERVAL": "stream_edit_interval",
}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    raw: dict[str, object] = {}
    config_file = Path(env.get("PARLEY_CONFIG", "parley.toml"))
    if "PARLEY_CONFIG" in env or config_file.is_file():
        raw.update(_read_toml(config_file))
    for key, name in _KEYS.items():
        if env.get(key, "") != "":
            raw[name] = env[key]
    return _build(raw)


def _read_toml(path: Path) -> dict[str, object]:
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"PARLEY_CONFIG names {path}, which does not exist") from None
    except (tomllib.TOMLDecodeError, OSError) as e:
        raise ConfigError(f"cannot read the configuration file {path}: {e}") from None
    by_name = {v: v for v in _KEYS.values()} | {k.lower(): v for k, v in _KEYS.items()} | _KEYS
    out = {}
    for key, value in doc.items():
        name = by_name.get(key) or by_name.get(key.lower())
        if name is None:
            raise ConfigError(f"unknown setting {key!r} in {path}")
        out[name] = value
    return out


def _build(raw: dict[str, object]) -> Settings:
    values: dict[str, object] = {}
    ints = {"context_turns", "max_input_chars", "llm_retries", "responders"}
    floats = {"llm_timeout", "stream_edit_interval"}
    for name, value in raw.items():
        try:
            if name in ints:
                values[name] = int(value)  # type: ignore[arg-type]
            elif name in floats:
                values[name] = float(value)  # type: ignore[arg-type]
            elif name == "channels":
                items = value if isinstance(value, list) else str(value).replace(",", " ").split()
                values[name] = frozenset(str(i).strip() for i in items if str(i).strip())
            else:
                values[name] = str(value)
        except (TypeError, ValueError):
            env_name = next(k for k, v in _KEYS.items() if v == name)
            raise ConfigError(f"{env_name} must be a number, not {value!r}") from None
    values["data_dir"] = Path(str(values.get("data_dir", "data")))
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.responders < 1 or settings.context_turns < 0 or settings.max_input_chars < 1:
        raise ConfigError("PARLEY_RESPONDERS and PARLEY_MAX_INPUT_CHARS must be at least 1")
    return settings


def prepare_data_dir(path: Path) -> Path:
    """Create the data dir if needed and prove it is a writable folder, or say what is wrong."""
    path = path.expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"PARLEY_DATA_DIR {path} is a file, not a folder: point it at a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"PARLEY_DATA_DIR {path} is not a writable folder ({e.strerror or e})") from None
    return path.resolve()
