"""Config resolution: flags > DAGU_* env > config file > defaults (reference §5.1)."""
import os
import textwrap
import zoneinfo

import pytest

from dagu.config import Config, ConfigError, clean_base_path, load_config


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty HOME; cwd moved there so relative paths are predictable."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.chdir(h)
    return str(h)


def write(path, text):
    """Write dedented YAML text, creating parent directories."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(text))
    return path


def load(home, env=None, **kw):
    """load_config with HOME set to the test home."""
    return load_config({"HOME": home, **(env or {})}, **kw)


# --- path layouts -------------------------------------------------------------------------------

def test_dagu_home_layout(home, tmp_path):
    dh = str(tmp_path / "dh")
    cfg = load(home, {"DAGU_HOME": dh})
    assert (cfg.home_dir, cfg.dags_dir, cfg.data_dir, cfg.log_dir, cfg.admin_log_dir,
            cfg.suspend_flags_dir, cfg.base_config) == (
        dh, f"{dh}/dags", f"{dh}/data", f"{dh}/logs", f"{dh}/logs/admin", f"{dh}/suspend",
        f"{dh}/base.yaml")
    assert cfg.db_path == f"{dh}/data/dagu.db"
    assert cfg.scheduler_lock_path == f"{dh}/data/scheduler.lock"


@pytest.mark.parametrize("xdg_data, data_root", [
    (None, "{home}/.local/share/dagu"),
    ("{tmp}/xdg", "{tmp}/xdg/dagu"),
])
def test_xdg_layout(home, tmp_path, xdg_data, data_root):
    env = {"XDG_DATA_HOME": xdg_data.format(tmp=tmp_path)} if xdg_data else {}
    cfg = load(home, env)
    root = data_root.format(home=home, tmp=tmp_path)
    assert cfg.home_dir == f"{home}/.config/dagu"
    assert cfg.dags_dir == f"{home}/.config/dagu/dags"
    assert cfg.base_config == f"{home}/.config/dagu/base.yaml"
    assert (cfg.data_dir, cfg.log_dir, cfg.admin_log_dir, cfg.suspend_flags_dir) == (
        f"{root}/data", f"{root}/logs", f"{root}/logs/admin", f"{root}/suspend")


def test_legacy_dot_dagu_when_it_exists(home):
    os.mkdir(f"{home}/.dagu")
    cfg = load(home)
    assert (cfg.home_dir, cfg.dags_dir, cfg.data_dir, cfg.admin_log_dir) == (
        f"{home}/.dagu", f"{home}/.dagu/dags", f"{home}/.dagu/data", f"{home}/.dagu/logs/admin")


def test_dagu_home_beats_legacy_dir(home, tmp_path):
    os.mkdir(f"{home}/.dagu")
    assert load(home, {"DAGU_HOME": str(tmp_path / "dh")}).home_dir == str(tmp_path / "dh")


def test_home_defaults_to_environ_home(home):
    assert load_config({"HOME": home}).home_dir == f"{home}/.config/dagu"
    assert load_config({}, home=home).home_dir == f"{home}/.config/dagu"


@pytest.mark.parametrize("env, expected", [
    ({"DAGU_DAGS_DIR": "/a"}, "/a"),
    ({"DAGU_DAGS": "/b"}, "/b"),
    ({"DAGU_DAGS_DIR": "/a", "DAGU_DAGS": "/b"}, "/a"),
    ({"DAGU_DAGS_DIR": "", "DAGU_DAGS": "/b"}, "/b"),
])
def test_dags_dir_env(home, env, expected):
    assert load(home, env).dags_dir == expected


# --- precedence ---------------------------------------------------------------------------------

@pytest.mark.parametrize("file, env, flag, expected", [
    (None, None, None, ("127.0.0.1", 8080)),
    ("h-file", None, None, ("h-file", 7001)),
    ("h-file", "h-env", None, ("h-env", 7002)),
    ("h-file", "h-env", "h-flag", ("h-flag", 7003)),
    (None, None, "h-flag", ("h-flag", 7003)),
])
def test_precedence_flag_env_file_default(home, file, env, flag, expected):
    dh = f"{home}/dh"
    if file:
        write(f"{dh}/config.yaml", f"host: {file}\nport: 7001\n")
    environ = {"DAGU_HOME": dh}
    if env:
        environ.update(DAGU_HOST=env, DAGU_PORT="7002")
    overrides = {"host": flag, "port": 7003} if flag else {"host": None}
    cfg = load(home, environ, overrides=overrides)
    assert (cfg.host, cfg.port) == expected


def test_dags_dir_precedence(home):
    dh = f"{home}/dh"
    write(f"{dh}/config.yaml", "paths:\n  dagsDir: /from-file\n")
    assert load(home, {"DAGU_HOME": dh}).dags_dir == "/from-file"
    assert load(home, {"DAGU_HOME": dh, "DAGU_DAGS_DIR": "/from-env"}).dags_dir == "/from-env"
    cfg = load(home, {"DAGU_HOME": dh, "DAGU_DAGS_DIR": "/e"}, overrides={"dags_dir": "/flag"})
    assert cfg.dags_dir == "/flag"


def test_explicit_config_file_and_admin_merge(home, tmp_path):
    dh = f"{home}/dh"
    write(f"{dh}/config.yaml", "host: ignored\n")
    explicit = write(str(tmp_path / "c.yaml"),
                     "host: explicit\nport: 9000\nauth: {basic: {username: u, password: p}}\n")
    write(f"{dh}/admin.yaml", "port: 9001\nauth: {basic: {password: admin}}\n")
    cfg = load(home, {"DAGU_HOME": dh}, config_file=explicit)
    assert (cfg.host, cfg.port, cfg.config_file) == ("explicit", 9001, explicit)
    assert (cfg.auth_basic_username, cfg.auth_basic_password) == ("u", "admin")


def test_config_yaml_then_admin_yaml(home):
    dh = f"{home}/dh"
    write(f"{dh}/config.yaml", "host: a\ndebug: true\n")
    write(f"{dh}/admin.yaml", "host: b\n")
    cfg = load(home, {"DAGU_HOME": dh})
    assert (cfg.host, cfg.debug, cfg.config_file) == ("b", True, f"{dh}/config.yaml")


def test_admin_yaml_alone_and_no_file(home):
    dh = f"{home}/dh"
    assert load(home, {"DAGU_HOME": dh}).config_file is None
    write(f"{dh}/admin.yaml", "port: 1234\n")
    cfg = load(home, {"DAGU_HOME": dh})
    assert (cfg.port, cfg.config_file) == (1234, f"{dh}/admin.yaml")


def test_missing_explicit_config_file(home):
    with pytest.raises(ConfigError, match="not found"):
        load(home, config_file=f"{home}/nope.yaml")


# --- config file keys ---------------------------------------------------------------------------

@pytest.mark.parametrize("yaml_text, field, expected", [
    ("paths: {dataDir: /d}", "data_dir", "/d"),
    ("paths: {logDir: /l}", "log_dir", "/l"),
    ("paths: {adminLogsDir: /al}", "admin_log_dir", "/al"),
    ("paths: {suspendFlagsDir: /s}", "suspend_flags_dir", "/s"),
    ("paths: {baseConfig: /b.yaml}", "base_config", "/b.yaml"),
    ("paths: {executable: /bin/dagu}", "executable", "/bin/dagu"),
    ("dags: /legacy-dags", "dags_dir", "/legacy-dags"),
    ("{dagsDir: /ld, paths: {dagsDir: /new}}", "dags_dir", "/ld"),
    ("{dataDir: /ld, paths: {dataDir: /new}}", "data_dir", "/ld"),
    ("{logDir: /ll}", "log_dir", "/ll"),
    ("{adminLogsDir: /la}", "admin_log_dir", "/la"),
    ("{suspendFlagsDir: /ls}", "suspend_flags_dir", "/ls"),
    ("{baseConfig: /lb.yaml}", "base_config", "/lb.yaml"),
    ("{executable: /lx}", "executable", "/lx"),
    ("{dataDir: '', paths: {dataDir: /new}}", "data_dir", "/new"),
    ("paths: {dataDir: ~/d}", "data_dir", "{home}/d"),
    ("paths: {dataDir: $MYROOT/d}", "data_dir", "/root-from-env/d"),
    ("paths: {dataDir: '${MYROOT}/d'}", "data_dir", "/root-from-env/d"),
    ("paths: {dataDir: '$UNSET_VAR/d'}", "data_dir", "/d"),
    ("paths: {dataDir: rel/d}", "data_dir", "{home}/rel/d"),
    ("workDir: ~/w", "work_dir", "{home}/w"),
    ("tz: Asia/Tokyo", "tz", "Asia/Tokyo"),
    ("logFormat: json", "log_format", "json"),
    ("headless: true", "headless", True),
    ("latestStatusToday: yes", "latest_status_today", True),
    ("debug: 'False'", "debug", False),
    ("permissions: {writeDAGs: false}", "perm_write_dags", False),
    ("permissions: {runDAGs: false}", "perm_run_dags", False),
    ("tls: {certFile: /c.pem, keyFile: /k.pem}", "tls_cert_file", "/c.pem"),
    ("queues: {enabled: false}", "queues_enabled", False),
    ("server: {maxHandlerThreads: 8}", "max_handler_threads", 8),
    ("unknownKey: {whatever: 1}", "host", "127.0.0.1"),
    ("", "port", 8080),
])
def test_file_keys(home, yaml_text, field, expected):
    dh = f"{home}/dh"
    write(f"{dh}/config.yaml", yaml_text + "\n")
    cfg = load(home, {"DAGU_HOME": dh, "MYROOT": "/root-from-env"})
    if isinstance(expected, str):
        expected = expected.format(home=home)
    assert getattr(cfg, field) == expected


@pytest.mark.parametrize("yaml_text, expected", [
    ("auth: {basic: {username: u, password: p}, token: {value: t}}", ("u", "p", "t")),
    ("auth: {basic: {enabled: false, username: u, password: p}}", ("u", "p", "")),
    ("auth: {token: plain}", ("", "", "plain")),
    ("{isBasicAuth: true, basicAuthUsername: lu, basicAuthPassword: lp}", ("lu", "lp", "")),
    ("{isAuthToken: true, authToken: lt}", ("", "", "lt")),
    ("{auth: {basic: {username: u, password: p}, token: {value: t}},"
     " basicAuthUsername: lu, basicAuthPassword: lp, authToken: lt}", ("lu", "lp", "lt")),
    ("{auth: {basic: {username: u, password: p}}, basicAuthUsername: ''}", ("u", "p", "")),
])
def test_auth_keys(home, yaml_text, expected):
    dh = f"{home}/dh"
    write(f"{dh}/config.yaml", yaml_text + "\n")
    cfg = load(home, {"DAGU_HOME": dh})
    assert (cfg.auth_basic_username, cfg.auth_basic_password, cfg.auth_token) == expected


@pytest.mark.parametrize("env, expected", [
    ({"DAGU_AUTH_BASIC_USERNAME": "u", "DAGU_AUTH_BASIC_PASSWORD": "p", "DAGU_AUTH_TOKEN": "t"},
     ("u", "p", "t")),
    ({"DAGU_BASICAUTH_USERNAME": "u", "DAGU_BASICAUTH_PASSWORD": "p", "DAGU_AUTHTOKEN": "t"},
     ("u", "p", "t")),
    ({"DAGU_AUTH_BASIC_USERNAME": "new", "DAGU_BASICAUTH_USERNAME": "old"}, ("new", "", "")),
])
def test_auth_env(home, env, expected):
    cfg = load(home, env)
    assert (cfg.auth_basic_username, cfg.auth_basic_password, cfg.auth_token) == expected


@pytest.mark.parametrize("env, field, expected", [
    ({"DAGU_TZ": "UTC"}, "tz", "UTC"),
    ({"DAGU_DEBUG": "1"}, "debug", True),
    ({"DAGU_DEBUG": "YES"}, "debug", True),
    ({"DAGU_HEADLESS": "no"}, "headless", False),
    ({"DAGU_HEADLESS": "True"}, "headless", True),
    ({"DAGU_LOG_FORMAT": "json"}, "log_format", "json"),
    ({"DAGU_BASE_PATH": "/dagu/"}, "base_path", "/dagu"),
    ({"DAGU_WORK_DIR": "/w"}, "work_dir", "/w"),
    ({"DAGU_LATEST_STATUS_TODAY": "true"}, "latest_status_today", True),
    ({"DAGU_CERT_FILE": "/c", "DAGU_KEY_FILE": "/k"}, "tls_key_file", "/k"),
    ({"DAGU_EXECUTABLE": "~/bin/dagu"}, "executable", "{home}/bin/dagu"),
    ({"DAGU_LOG_DIR": "/l"}, "log_dir", "/l"),
    ({"DAGU_DATA_DIR": "/d"}, "data_dir", "/d"),
    ({"DAGU_SUSPEND_FLAGS_DIR": "/s"}, "suspend_flags_dir", "/s"),
    ({"DAGU_ADMIN_LOG_DIR": "/a"}, "admin_log_dir", "/a"),
    ({"DAGU_BASE_CONFIG": "/b.yaml"}, "base_config", "/b.yaml"),
    ({"DAGU_QUEUE_ENABLED": "false"}, "queues_enabled", False),
    ({"DAGU_MAX_HANDLER_THREADS": "16"}, "max_handler_threads", 16),
    ({"DAGU__ADMIN_PORT": "9999"}, "port", 9999),
    ({"DAGU_PORT": "1", "DAGU__ADMIN_PORT": "9999"}, "port", 1),
    ({"DAGU_PORT": ""}, "port", 8080),
])
def test_env_vars(home, env, field, expected):
    cfg = load(home, env)
    if isinstance(expected, str):
        expected = expected.format(home=home)
    assert getattr(cfg, field) == expected


def test_env_beats_file_for_paths_and_bools(home):
    dh = f"{home}/dh"
    write(f"{dh}/config.yaml", "paths: {logDir: /file-logs}\ndebug: true\n")
    cfg = load(home, {"DAGU_HOME": dh, "DAGU_LOG_DIR": "/env-logs", "DAGU_DEBUG": "false"})
    assert (cfg.log_dir, cfg.debug) == ("/env-logs", False)


@pytest.mark.parametrize("raw, expected", [
    ("", ""), ("/", ""), ("dagu", "/dagu"), ("/dagu/", "/dagu"), ("//a//b/", "/a/b"),
    ("/a/./b/../c", "/a/c"), (".", ""),
])
def test_base_path_cleaning(home, raw, expected):
    assert clean_base_path(raw) == expected
    dh = f"{home}/dh"
    write(f"{dh}/config.yaml", f"basePath: '{raw}'\n")
    assert load(home, {"DAGU_HOME": dh}).base_path == expected


@pytest.mark.parametrize("yaml_text, expected", [
    ("queues: {config: [{name: a, maxActiveRuns: 2}, {name: b, maxActiveRuns: 5}]}",
     (("a", 2), ("b", 5))),
    ("queues: {config: [{name: a}]}", (("a", 1),)),
    ("queues: {config: [{name: a, maxConcurrency: 3}]}", (("a", 3),)),
    ("queues: {enabled: true}", ()),
])
def test_queues_config(home, yaml_text, expected):
    dh = f"{home}/dh"
    write(f"{dh}/config.yaml", yaml_text + "\n")
    assert load(home, {"DAGU_HOME": dh}).queues == expected


@pytest.mark.parametrize("yaml_text, expected", [
    ("metrics: public", True), ("metrics: \"public\"", True), ("metrics: PUBLIC", True),
    ("metrics: private", False), ("metrics: other", False), ("", False),
])
def test_metrics_public(home, yaml_text, expected):
    dh = f"{home}/dh"
    write(f"{dh}/config.yaml", yaml_text + "\n")
    assert load(home, {"DAGU_HOME": dh}).metrics_public is expected


def test_defaults(home):
    cfg = load(home)
    assert (cfg.host, cfg.port, cfg.base_path, cfg.tz, cfg.debug, cfg.log_format) == (
        "127.0.0.1", 8080, "", "", False, "text")
    assert (cfg.perm_write_dags, cfg.perm_run_dags, cfg.queues_enabled, cfg.metrics_public) == (
        True, True, True, False)
    assert (cfg.max_request_bytes, cfg.max_handler_threads, cfg.executable, cfg.queues) == (
        1 << 20, 64, "", ())
    assert cfg.tzinfo() is None


def test_tzinfo(home):
    assert load(home, {"DAGU_TZ": "Europe/Paris"}).tzinfo() == zoneinfo.ZoneInfo("Europe/Paris")


def test_config_is_frozen(home):
    with pytest.raises(AttributeError):
        load(home).port = 1  # type: ignore[misc]
    assert isinstance(load(home), Config)


# --- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("yaml_text, message", [
    ("host: a\nport: [1\n", r"line \d"),
    ("host: a\n  bad: indent\n", "line 2"),
    ("- a\n- b\n", "must be a mapping"),
    ("port: abc\n", "port: expected an integer, got 'abc'"),
    ("port: 80.5\n", "port: expected an integer"),
    ("port: true\n", "port: expected an integer"),
    ("port: 70000\n", "port: must be between"),
    ("debug: maybe\n", "debug: expected a boolean"),
    ("host: [a]\n", "host: expected a string, got a list"),
    ("paths: /x\n", "paths: expected a mapping"),
    ("auth: yes\n", "auth: expected a mapping"),
    ("auth: {basic: u}\n", "auth.basic: expected a mapping"),
    ("auth: {token: [x]}\n", "auth.token: expected a string"),
    ("auth: {basic: {username: {a: 1}}}\n", "auth.basic.username: expected a string"),
    ("queues: {config: {name: a}}\n", "queues.config: expected a list"),
    ("queues: {config: [{maxActiveRuns: 1}]}\n", r"queues.config\[0\]"),
    ("queues: {config: [{name: a, maxActiveRuns: x}]}\n", "maxActiveRuns: expected an integer"),
    ("queues: {config: [{name: a, maxActiveRuns: 0}]}\n", "at least 1"),
    ("tz: Mars/Olympus\n", "unknown time zone 'Mars/Olympus'"),
    ("tls: {certFile: /c}\n", "both certFile and keyFile"),
    ("server: {maxHandlerThreads: 0}\n", "maxHandlerThreads"),
    ("metrics: {public: true}\n", "metrics: expected a string"),
])
def test_bad_config_file(home, yaml_text, message):
    dh = f"{home}/dh"
    path = write(f"{dh}/config.yaml", yaml_text)
    with pytest.raises(ConfigError, match=message) as info:
        load(home, {"DAGU_HOME": dh})
    if "line" in message or "mapping" in message:
        assert path in str(info.value)


def test_yaml_error_names_the_line(home):
    dh = f"{home}/dh"
    write(f"{dh}/config.yaml", "host: a\nport: 1\nauth:\n  basic: {username: u\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line [45]"):
        load(home, {"DAGU_HOME": dh})


@pytest.mark.parametrize("env, message", [
    ({"DAGU_PORT": "http"}, "DAGU_PORT: expected an integer, got 'http'"),
    ({"DAGU_PORT": "-1"}, "port: must be between"),
    ({"DAGU_DEBUG": "sure"}, "DAGU_DEBUG: expected a boolean"),
    ({"DAGU_TZ": "Nowhere/Land"}, "unknown time zone"),
    ({"DAGU_MAX_HANDLER_THREADS": "many"}, "DAGU_MAX_HANDLER_THREADS"),
])
def test_bad_env(home, env, message):
    with pytest.raises(ConfigError, match=message):
        load(home, env)


def test_bad_port_flag(home):
    with pytest.raises(ConfigError, match="flag port"):
        load(home, overrides={"port": "eighty"})
