"""Program configuration, resolved like Dagu v1.17 (reference §5.1).

Precedence: explicit overrides (CLI flags) > ``DAGU_*`` environment > config file
(``config.yaml`` then ``admin.yaml`` merged on top) > defaults from the path resolver.
Relative paths are made absolute against the current directory (Dagu's ``filepath.Abs``).
"""
from __future__ import annotations

import os
import posixpath
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(ValueError):
    """A config file, environment variable or flag holds a value that cannot be used."""


@dataclass(frozen=True)
class Config:
    """Everything the server, scheduler and CLI need to know about this installation."""

    home_dir: str
    dags_dir: str
    data_dir: str
    log_dir: str
    admin_log_dir: str
    suspend_flags_dir: str
    base_config: str
    config_file: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    base_path: str = ""
    tz: str = ""
    debug: bool = False
    log_format: str = "text"
    headless: bool = False
    work_dir: str = ""
    latest_status_today: bool = False
    perm_write_dags: bool = True
    perm_run_dags: bool = True
    auth_basic_username: str = ""
    auth_basic_password: str = ""
    auth_token: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    queues_enabled: bool = True
    queues: tuple[tuple[str, int], ...] = ()
    metrics_public: bool = False
    max_request_bytes: int = 1 << 20
    max_handler_threads: int = 64
    read_timeout_sec: int = 15          # headers and body of a request must arrive within this
    executable: str = ""

    @property
    def db_path(self) -> str:
        """The SQLite run store."""
        return os.path.join(self.data_dir, "dagu.db")

    @property
    def scheduler_lock_path(self) -> str:
        """The file the single scheduler of this data directory holds a flock on."""
        return os.path.join(self.data_dir, "scheduler.lock")

    def tzinfo(self) -> zoneinfo.ZoneInfo | None:
        """The configured time zone, or None for the system's local time."""
        return zoneinfo.ZoneInfo(self.tz) if self.tz else None


_PATH_KEYS = {"dagsDir": "dags_dir", "executable": "executable", "logDir": "log_dir",
              "dataDir": "data_dir", "suspendFlagsDir": "suspend_flags_dir",
              "adminLogsDir": "admin_log_dir", "baseConfig": "base_config"}

# (key path in the YAML document, Config field or "" to check only, kind). A later row overrides
# an earlier one for the same field only with a non-empty value, so the legacy top-level keys
# beat their `paths.*`/`auth.*` twins when set.
_FILE_KEYS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("host",), "host", "str"), (("port",), "port", "int"),
    (("basePath",), "base_path", "str"), (("tz",), "tz", "str"),
    (("debug",), "debug", "bool"), (("logFormat",), "log_format", "str"),
    (("headless",), "headless", "bool"), (("workDir",), "work_dir", "path"),
    (("latestStatusToday",), "latest_status_today", "bool"),
    (("permissions", "writeDAGs"), "perm_write_dags", "bool"),
    (("permissions", "runDAGs"), "perm_run_dags", "bool"),
    (("auth", "basic", "enabled"), "", "bool"),  # Dagu ignores it: credentials decide
    (("auth", "basic", "username"), "auth_basic_username", "str"),
    (("auth", "basic", "password"), "auth_basic_password", "str"),
    (("auth", "token"), "auth_token", "token"),
    (("isBasicAuth",), "", "bool"), (("isAuthToken",), "", "bool"),
    (("basicAuthUsername",), "auth_basic_username", "str"),
    (("basicAuthPassword",), "auth_basic_password", "str"),
    (("authToken",), "auth_token", "str"),
    (("tls", "certFile"), "tls_cert_file", "path"), (("tls", "keyFile"), "tls_key_file", "path"),
    *((("paths", key), field, "path") for key, field in _PATH_KEYS.items()),
    (("dags",), "dags_dir", "path"),
    *(((key,), field, "path") for key, field in _PATH_KEYS.items()),
    (("queues", "enabled"), "queues_enabled", "bool"), (("queues", "config"), "queues", "queues"),
    (("metrics",), "metrics_public", "metrics"),
    (("server", "maxHandlerThreads"), "max_handler_threads", "int"),
    (("server", "readTimeoutSec"), "read_timeout_sec", "int"),
)

# (variable, Config field, kind). For each field the first variable set (non-empty) wins:
# current names before legacy aliases (DAGU__ADMIN_*, DAGU__DATA...), DAGU_DAGS_DIR before DAGU_DAGS.
_ENV_VARS: tuple[tuple[str, str, str], ...] = (
    ("DAGU_HOST", "host", "str"), ("DAGU__ADMIN_HOST", "host", "str"),
    ("DAGU_PORT", "port", "int"), ("DAGU__ADMIN_PORT", "port", "int"),
    ("DAGU_TZ", "tz", "str"), ("DAGU_DEBUG", "debug", "bool"),
    ("DAGU_LOG_FORMAT", "log_format", "str"), ("DAGU_BASE_PATH", "base_path", "str"),
    ("DAGU_HEADLESS", "headless", "bool"), ("DAGU_WORK_DIR", "work_dir", "path"),
    ("DAGU_LATEST_STATUS_TODAY", "latest_status_today", "bool"),
    ("DAGU_AUTH_BASIC_USERNAME", "auth_basic_username", "str"),
    ("DAGU_BASICAUTH_USERNAME", "auth_basic_username", "str"),
    ("DAGU_AUTH_BASIC_PASSWORD", "auth_basic_password", "str"),
    ("DAGU_BASICAUTH_PASSWORD", "auth_basic_password", "str"),
    ("DAGU_AUTH_TOKEN", "auth_token", "str"), ("DAGU_AUTHTOKEN", "auth_token", "str"),
    ("DAGU_CERT_FILE", "tls_cert_file", "path"), ("DAGU_KEY_FILE", "tls_key_file", "path"),
    ("DAGU_EXECUTABLE", "executable", "path"),
    ("DAGU_DAGS_DIR", "dags_dir", "path"), ("DAGU_DAGS", "dags_dir", "path"),
    ("DAGU_LOG_DIR", "log_dir", "path"),
    ("DAGU_DATA_DIR", "data_dir", "path"), ("DAGU__DATA", "data_dir", "path"),
    ("DAGU_SUSPEND_FLAGS_DIR", "suspend_flags_dir", "path"),
    ("DAGU__SUSPEND_FLAGS_DIR", "suspend_flags_dir", "path"),
    ("DAGU_ADMIN_LOG_DIR", "admin_log_dir", "path"),
    ("DAGU__ADMIN_LOGS_DIR", "admin_log_dir", "path"),
    ("DAGU_BASE_CONFIG", "base_config", "path"),
    ("DAGU_QUEUE_ENABLED", "queues_enabled", "bool"),
    ("DAGU_METRICS", "metrics_public", "metrics"),
    ("DAGU_MAX_HANDLER_THREADS", "max_handler_threads", "int"),
    ("DAGU_READ_TIMEOUT_SEC", "read_timeout_sec", "int"),
)

_OVERRIDES: dict[str, str] = {"host": "str", "port": "int", "dags_dir": "path"}
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_VAR = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def load_config(environ: Mapping[str, str], config_file: str | None = None,
                overrides: Mapping[str, object] | None = None, home: str | None = None) -> Config:
    """Resolve the Config from flags > DAGU_* env > config file > defaults."""
    home = home or environ.get("HOME") or os.path.expanduser("~")
    expand = _path_expander(environ, home)
    settings = _default_paths(environ, home, expand)
    doc, used = _read_documents(settings["home_dir"], config_file and expand(config_file))
    settings["config_file"] = used
    settings.update(_from_file(doc, used or "config", expand))
    settings.update(_from_env(environ, expand))
    for field, value in (overrides or {}).items():
        if value is not None and field in _OVERRIDES:
            settings[field] = _coerce(_OVERRIDES[field], value, f"flag {field}", expand)
    return _validated(Config(**settings))


def _path_expander(environ: Mapping[str, str], home: str) -> Callable[[str], str]:
    """A function expanding `~` and `$VAR`/`${VAR}` (unset → empty, like Go) and making absolute."""
    def expand(path: str) -> str:
        path = _VAR.sub(lambda m: environ.get(m.group(1) or m.group(2), ""), path)
        if path == "~" or path.startswith("~/"):
            path = home + path[1:]
        return os.path.abspath(path)
    return expand


def _default_paths(environ: Mapping[str, str], home: str, expand: Callable[[str], str]) -> dict:
    """The resolver's table: DAGU_HOME, else legacy ~/.dagu if it exists, else XDG."""
    dagu_home = environ.get("DAGU_HOME", "")
    legacy = os.path.join(home, ".dagu")
    if dagu_home or os.path.isdir(legacy):
        config_dir = expand(dagu_home) if dagu_home else legacy
        data_root = config_dir
    else:
        config_dir = os.path.join(home, ".config", "dagu")
        xdg_data = environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
        data_root = os.path.join(expand(xdg_data), "dagu")
    return {
        "home_dir": config_dir,
        "dags_dir": os.path.join(config_dir, "dags"),
        "base_config": os.path.join(config_dir, "base.yaml"),
        "data_dir": os.path.join(data_root, "data"),
        "log_dir": os.path.join(data_root, "logs"),
        "admin_log_dir": os.path.join(data_root, "logs", "admin"),
        "suspend_flags_dir": os.path.join(data_root, "suspend"),
    }


def _read_documents(config_dir: str, explicit: str | None) -> tuple[dict, str | None]:
    """The config file (explicit or <configDir>/config.yaml) with <configDir>/admin.yaml merged on top."""
    if explicit and not os.path.isfile(explicit):
        raise ConfigError(f"config file not found: {explicit}")
    main = explicit or os.path.join(config_dir, "config.yaml")
    admin = os.path.join(config_dir, "admin.yaml")
    doc: dict = {}
    used = None
    for path in (main, admin):
        if os.path.isfile(path):
            doc = _deep_merge(doc, _parse_yaml(path))
            used = used or path
    return doc, used


def _parse_yaml(path: str) -> dict:
    """One YAML mapping from a file; syntax errors name the line."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {e.problem or e.context}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read config: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config must be a mapping, got {type(data).__name__}")
    return data


def _deep_merge(base: dict, top: dict) -> dict:
    """`top` merged over `base`; nested mappings merge key by key (viper's MergeInConfig)."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _deep_merge(merged[key], value)
        merged[key] = value
    return merged


def _from_file(doc: dict, source: str, expand: Callable[[str], str]) -> dict:
    """Config fields set by the config document; unknown keys are ignored."""
    out: dict = {}
    for keys, field, kind in _FILE_KEYS:
        value = _lookup(doc, keys, source)
        if value is None:
            continue
        coerced = _coerce(kind, value, f"{source}: {'.'.join(keys)}", expand)
        if field and (coerced != "" or (kind != "path" and field not in out)):
            out[field] = coerced
    return out


def _lookup(doc: dict, keys: tuple[str, ...], source: str) -> object:
    """The value at a key path, None if absent; a non-mapping on the way is an error."""
    node: object = doc
    for depth, key in enumerate(keys):
        if node is None:
            return None
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: {'.'.join(keys[:depth])}: expected a mapping, "
                              f"got {_describe(node)}")
        node = node.get(key)
    return node


def _from_env(environ: Mapping[str, str], expand: Callable[[str], str]) -> dict:
    """Config fields set by DAGU_* variables (empty variables count as unset, like viper)."""
    out: dict = {}
    for name, field, kind in _ENV_VARS:
        value = environ.get(name, "")
        if value != "" and field not in out:
            out[field] = _coerce(kind, value, f"environment variable {name}", expand)
    return out


def _coerce(kind: str, value: object, where: str, expand: Callable[[str], str]) -> object:
    """`value` converted to `kind`, or a ConfigError naming `where`."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, (str, int)) else None
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ConfigError(f"{where}: expected a boolean, got {_describe(value)}")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {_describe(value)}")
    if kind == "token" and isinstance(value, dict):
        token = value.get("value")
        return "" if token is None else _coerce("str", token, f"{where}.value", expand)
    if kind == "queues":
        return _queues(value, where)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: expected a string, got {_describe(value)}")
    text = str(value)
    if kind == "metrics":
        return text.strip().lower() == "public"
    if kind == "path" and text:
        return expand(text)
    return text


def _queues(value: object, where: str) -> tuple[tuple[str, int], ...]:
    """`queues.config`: a list of {name, maxActiveRuns} (docs' `maxConcurrency` accepted too)."""
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {_describe(value)}")
    queues = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ConfigError(f"{at}: expected a mapping with a non-empty string 'name'")
        limit = item.get("maxActiveRuns", item.get("maxConcurrency", 1))
        limit = _coerce("int", limit, f"{at}.maxActiveRuns", str)
        if limit < 1:
            raise ConfigError(f"{at}.maxActiveRuns: must be at least 1, got {limit}")
        queues.append((item["name"], limit))
    return tuple(queues)


def _describe(value: object) -> str:
    """A short description of a wrong value for error messages."""
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def _validated(cfg: Config) -> Config:
    """`cfg` with cleaned basePath, after range, time zone and TLS checks."""
    if not 0 <= cfg.port <= 65535:
        raise ConfigError(f"port: must be between 0 and 65535, got {cfg.port}")
    if cfg.read_timeout_sec < 1:
        raise ConfigError(f"server.readTimeoutSec: must be at least 1, got {cfg.read_timeout_sec}")
    if cfg.max_handler_threads < 1:
        raise ConfigError(f"server.maxHandlerThreads: must be at least 1, got {cfg.max_handler_threads}")
    if bool(cfg.tls_cert_file) != bool(cfg.tls_key_file):
        raise ConfigError("tls: both certFile and keyFile are required")
    if cfg.tz:
        try:
            zoneinfo.ZoneInfo(cfg.tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ConfigError(f"tz: unknown time zone {cfg.tz!r}") from None
    return replace(cfg, base_path=clean_base_path(cfg.base_path))


def clean_base_path(path: str) -> str:
    """Dagu's basePath cleaning: path.Clean, leading '/' added, no trailing '/', '/' → ''."""
    if not path:
        return ""
    cleaned = posixpath.normpath("/" + path.lstrip("/"))
    return "" if cleaned == "/" else cleaned
