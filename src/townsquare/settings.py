"""One ``Settings`` object, built once from flags, the environment and an optional config file,
then passed down explicitly. This is the only module that reads the environment.

    >>> s = Settings.load(home="/srv/ts", environ={"TOWNSQUARE_LLM": "extractive"})
    >>> (str(s.home), s.store_url, s.llm.backend, s.server_mode)
    ('/srv/ts', None, 'extractive', False)
    >>> str(s.db_target), str(s.models_dir)
    ('/srv/ts/townsquare.db', '/srv/ts/models')
    >>> Settings.load(store_url="mysql://x", environ={})
    Traceback (most recent call last):
    ...
    townsquare.settings.SettingsError: store URL: expected a postgresql:// URL, got 'mysql://x'

Precedence, highest first: explicit arguments (the CLI's flags), the environment, the config file
(``--config FILE``, else ``$TOWNSQUARE_CONFIG``, else ``HOME/townsquare.toml`` when it exists),
then the defaults below.

Environment variables (all optional):

=========================== ===================================================================
``TOWNSQUARE_HOME``          the data folder (default ``./.townsquare``)
``TOWNSQUARE_STORE``         a ``postgresql://`` URL: server mode (PostgreSQL store)
``TOWNSQUARE_CONFIG``        a TOML config file
``TOWNSQUARE_LLM``           the default generation backend (``extractive`` unless set; ``local``, ...)
``TOWNSQUARE_LLM_MODEL``     its model
``TOWNSQUARE_LLM_BASE_URL``  the OpenAI-compatible endpoint (``--backend openai``)
``TOWNSQUARE_LLM_API_KEY``   its key (else ``OPENAI_API_KEY``)
``TOWNSQUARE_LLM_GGUF``      a GGUF file for the local backend instead of the packaged model
``TOWNSQUARE_EMBED_MODEL``   the embedding model for stores that have none yet
``TOWNSQUARE_FAST_MODEL``    the fast embedding tier in front of e5 (``docs/embedding-tiers.md``):
                             ``none`` (default), ``fit-e5`` (the home's table, made by
                             ``townsquare fit-fast``), ``m2v-e5`` (built on first use, ~4 min),
                             ``auto`` (the first of the two whose table is already made)
``TOWNSQUARE_CACHE``         where exported models are cached (default ``~/.cache/townsquare``)
=========================== ===================================================================

The config file holds the same settings by section::

    home = "/srv/townsquare"
    store_url = "postgresql://db/townsquare"
    embed_model = "e5-small-int8"
    fast_model = "none"
    [llm]
    backend = "openai"
    base_url = "http://127.0.0.1:8080/v1"
    model = "qwen2.5-7b-instruct"

Credentials of followed streams are read from variables the user names (``townsquare follow
--token-env NAME``, default ``X_BEARER_TOKEN`` for X) when used: ``secret_from_env``.

``townsquare serve --workers N`` hands the settings to its worker processes as JSON in
``$TOWNSQUARE_SERVE`` (``to_json`` / ``for_worker``); torchrun's ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` are read here too (``dist_env``).
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import orjson

DEFAULT_HOME = ".townsquare"
DB_FILE = "townsquare.db"
CONFIG_FILE = "townsquare.toml"
WORKER_ENV = "TOWNSQUARE_SERVE"


class SettingsError(ValueError):
    """A setting that cannot be used as given (says which and why)."""


def _fast_model(value: str | None) -> str | None:
    """The ``fast_model`` setting, lower-cased; "" is None (the default: no fast tier).

    >>> _fast_model(" None "), _fast_model("auto"), _fast_model("m2v-e5"), _fast_model("")
    ('none', 'auto', 'm2v-e5', None)
    """
    if not isinstance(value, (str, type(None))):      # a TOML number or list, say
        raise SettingsError(f"fast_model: expected a model name, 'auto' or 'none', got {value!r}")
    v = (value or "").strip().lower()
    return v or None


def _store_url(url: str | None, where: str = "store URL") -> str | None:
    url = (url or "").strip()
    if not url:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise SettingsError(f"{where}: expected a postgresql:// URL, got {url[:40]!r}")
    return url


@dataclass(frozen=True, slots=True)
class LLMSettings:
    """The default generation backend (``llm.get_backend``) and its options."""

    backend: str | None = None        # None: llm.DEFAULT_BACKEND (local when a model is set)
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)    # never printed
    gguf: str | None = None           # a GGUF file for the local backend

    def options(self, backend: str | None = None) -> dict[str, str]:
        """Keyword options for ``llm.get_backend`` (only those that are set); with ``backend``,
        only those that backend takes. ``model`` is the configured backend's model (and the
        ``openai`` backend's, which always read it: an endpoint serves one model); the endpoint
        and key are the ``openai`` backend's, the GGUF file the ``local`` one's.

        >>> s = LLMSettings(backend="openai", model="qwen", base_url="http://h/v1", gguf="m.gguf")
        >>> s.options("openai"), s.options("local"), s.options("extractive")
        ({'model': 'qwen', 'base_url': 'http://h/v1'}, {'model_path': 'm.gguf'}, {})
        >>> LLMSettings(backend="local", model="smollm2-360m").options("local")
        {'model': 'smollm2-360m'}
        """
        opts = {"model": self.model, "base_url": self.base_url, "api_key": self.api_key,
                "model_path": self.gguf}
        if backend is not None:
            takes = set(_BACKEND_OPTIONS.get(backend, ()))
            if backend not in (self.backend, "openai"):
                takes.discard("model")
            opts = {k: v for k, v in opts.items() if k in takes}
        return {k: v for k, v in opts.items() if v}

    def with_flags(self, *, backend: str | None = None, model: str | None = None,
                   base_url: str | None = None) -> "LLMSettings":
        """These settings with a command's flags over them (None: not given)."""
        given = {"backend": backend, "model": model, "base_url": base_url}
        return replace(self, **{k: v for k, v in given.items() if v is not None})


# Which of the settings' options each generation backend takes (``llm.get_backend`` names).
_BACKEND_OPTIONS = {"openai": ("model", "base_url", "api_key"), "local": ("model", "model_path"),
                    "trained": ("model",)}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a townsquare process is configured with. Frozen: derive with ``replace``."""

    home: Path = Path(DEFAULT_HOME)
    store_url: str | None = None      # a postgresql:// URL: server mode
    llm: LLMSettings = field(default_factory=LLMSettings)
    embed_model: str | None = None    # for a store with no vectors yet (None: the default model)
    # The fast embedding tier in front of e5 (``embed.tiers``; ``services.indexes.fast_model_for``
    # decides): None or "none" (off, the default), "auto", or a fast model's name ("fit-e5",
    # "m2v-e5"). Off by default: on 2 cores at 5,700 posts/s it takes the CPU that ingest and the
    # lexical index need (ingest p50 0.06-0.17 s -> 0.5-1.2 s with fit-e5 in its own process,
    # bench/serve.py --findability; docs/embedding-tiers.md), and its quality is below e5's
    # (eval/search.py's fast-tier rows).
    fast_model: str | None = None
    # Files derived from installed packages, the same for every home (the ONNX exports of the
    # embedding models, ~15 s each to make): one cache per user, not one per data folder.
    cache_dir: Path | None = None     # None: $TOWNSQUARE_CACHE, else ~/.cache/townsquare

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home))
        object.__setattr__(self, "store_url", _store_url(self.store_url))
        object.__setattr__(self, "fast_model", _fast_model(self.fast_model))
        object.__setattr__(self, "cache_dir", Path(self.cache_dir) if self.cache_dir
                           else default_cache_dir(os.environ))

    # --- derived ---------------------------------------------------------------------------------
    @property
    def server_mode(self) -> bool:
        """A PostgreSQL store shared by processes (and machines), not the embedded one."""
        return self.store_url is not None

    @property
    def db_target(self) -> str | Path:
        """What ``store.open_store`` opens: the URL in server mode, else ``home/townsquare.db``."""
        return self.store_url or self.home / DB_FILE

    @property
    def models_dir(self) -> Path:
        """The models this home trained (brand safety); exported ones live in ``cache_dir``."""
        return self.home / "models"

    @property
    def corpus_dir(self) -> Path:
        """Where ``townsquare corpus build`` writes the training corpus and its token shards."""
        return self.home / "corpus"

    @property
    def tokenizer_file(self) -> Path:
        """The tokenizer ``townsquare corpus build`` trains."""
        return self.corpus_dir / "data" / "tokenizer.json"

    @property
    def checkpoint_dir(self) -> Path:
        """Where ``townsquare train`` writes townsquare's GPT (``ckpt.pt``)."""
        return self.home / "model"

    @property
    def checkpoint_file(self) -> Path:
        """The checkpoint the ``trained`` backend loads by default."""
        return self.checkpoint_dir / "ckpt.pt"

    def redacted_store(self) -> str:
        """The store for logs and manifests: the URL without its password, or the home folder."""
        return redact_url(self.store_url) if self.store_url else str(self.home)

    # --- building --------------------------------------------------------------------------------
    @classmethod
    def load(cls, *, home: str | Path | None = None, store_url: str | None = None,
             config_file: str | Path | None = None, llm: Mapping[str, Any] | None = None,
             embed_model: str | None = None, fast_model: str | None = None,
             environ: Mapping[str, str] | None = None) -> "Settings":
        """Flags (the arguments), over the environment (``environ``, default ``os.environ``),
        over the config file, over the defaults."""
        env = os.environ if environ is None else environ
        path = config_file or env.get("TOWNSQUARE_CONFIG")
        home_guess = Path(home or env.get("TOWNSQUARE_HOME") or DEFAULT_HOME)
        if path is None and (home_guess / CONFIG_FILE).is_file():
            path = home_guess / CONFIG_FILE
        conf = _read_config(Path(path)) if path else {}
        conf_llm = conf.get("llm", {})

        def pick(flag, env_key, conf_value):
            return flag if flag not in (None, "") else (env.get(env_key) or conf_value)

        llm = dict(llm or {})
        return cls(
            home=Path(pick(home, "TOWNSQUARE_HOME", conf.get("home")) or DEFAULT_HOME),
            store_url=_store_url(pick(store_url, "TOWNSQUARE_STORE", conf.get("store_url")),
                                 "store URL"),
            llm=LLMSettings(
                backend=pick(llm.get("backend"), "TOWNSQUARE_LLM", conf_llm.get("backend")),
                model=pick(llm.get("model"), "TOWNSQUARE_LLM_MODEL", conf_llm.get("model")),
                base_url=pick(llm.get("base_url"), "TOWNSQUARE_LLM_BASE_URL",
                              conf_llm.get("base_url")),
                api_key=(pick(llm.get("api_key"), "TOWNSQUARE_LLM_API_KEY",
                              conf_llm.get("api_key")) or env.get("OPENAI_API_KEY")),
                gguf=pick(llm.get("gguf"), "TOWNSQUARE_LLM_GGUF", conf_llm.get("gguf"))),
            embed_model=pick(embed_model, "TOWNSQUARE_EMBED_MODEL", conf.get("embed_model")),
            fast_model=pick(fast_model, "TOWNSQUARE_FAST_MODEL", conf.get("fast_model")),
            cache_dir=(Path(conf["cache_dir"]) if conf.get("cache_dir") and
                       not env.get("TOWNSQUARE_CACHE") else default_cache_dir(env)))

    def with_home(self, home: str | Path | None) -> "Settings":
        """The same settings with another data folder (a command's ``--home``), or unchanged."""
        return self if home is None else replace(self, home=Path(home))

    # --- handing settings to worker processes -----------------------------------------------------
    def to_json(self, **extra: Any) -> str:
        """JSON for another process (``for_worker``); ``extra`` carries the caller's own options."""
        d = asdict(self)
        d["home"], d["cache_dir"] = str(self.home), str(self.cache_dir)
        return orjson.dumps({"settings": d, "extra": extra}).decode()

    @classmethod
    def from_json(cls, raw: str) -> tuple["Settings", dict[str, Any]]:
        d = orjson.loads(raw)
        s = d["settings"]
        return cls(home=Path(s["home"]), store_url=s.get("store_url"),
                   llm=LLMSettings(**s.get("llm", {})),
                   embed_model=s.get("embed_model"), fast_model=s.get("fast_model"),
                   cache_dir=s.get("cache_dir")), d.get("extra", {})

    @classmethod
    def for_worker(cls, environ: Mapping[str, str] | None = None
                   ) -> tuple["Settings", dict[str, Any]]:
        """The settings ``townsquare serve --workers N`` left for its workers in
        ``$TOWNSQUARE_SERVE``, with its extra options."""
        env = os.environ if environ is None else environ
        raw = env.get(WORKER_ENV)
        if not raw:
            raise RuntimeError(f"${WORKER_ENV} is not set: start workers with "
                               "`townsquare serve --workers N`")
        return cls.from_json(raw)

    @staticmethod
    def worker_environ(payload: str) -> None:
        """Leave ``payload`` (``to_json``) where ``for_worker`` reads it, for child processes."""
        os.environ[WORKER_ENV] = payload


def secret_from_env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of the environment variable ``name`` that the user named for a credential
    (``townsquare follow --token-env NAME``); None when unset. Read when used, never kept in
    ``Settings`` (which may be logged or handed to worker processes).

    >>> secret_from_env("X_BEARER_TOKEN", {"X_BEARER_TOKEN": "s3cret"})
    's3cret'
    """
    env = os.environ if environ is None else environ
    return env.get(name)


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """``$TOWNSQUARE_CACHE``, else ``$XDG_CACHE_HOME/townsquare``, else ``~/.cache/townsquare``.

    >>> str(default_cache_dir({"TOWNSQUARE_CACHE": "/var/cache/ts"}))
    '/var/cache/ts'
    """
    if environ.get("TOWNSQUARE_CACHE"):
        return Path(environ["TOWNSQUARE_CACHE"])
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "townsquare"


def redact_url(url: str) -> str:
    """A database URL as logs and errors may show it: the password replaced.

    >>> redact_url("postgresql://app:secret@db.example/townsquare")
    'postgresql://app:***@db.example/townsquare'
    >>> redact_url("postgresql:///townsquare")
    'postgresql:///townsquare'
    """
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            conf = tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{path}: not valid TOML: {e}") from None
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(conf) - known)
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
    llm = conf.get("llm", {})
    if not isinstance(llm, dict):
        raise SettingsError(f"{path}: [llm] must be a table")
    bad = sorted(set(llm) - {f.name for f in fields(LLMSettings)})
    if bad:
        raise SettingsError(f"{path}: unknown [llm] setting(s) {', '.join(bad)}")
    return conf


@dataclass(frozen=True, slots=True)
class DistEnv:
    """torchrun's view of this process: its rank, how many there are, its local GPU."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def dist_env(environ: Mapping[str, str] | None = None) -> DistEnv:
    """``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as torchrun sets them (one process without).

    >>> dist_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    DistEnv(rank=1, world_size=2, local_rank=1)
    """
    env = os.environ if environ is None else environ
    try:
        return DistEnv(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)),
                       int(env.get("LOCAL_RANK", 0)))
    except ValueError as e:
        raise SettingsError(f"torchrun environment: {e}") from None
