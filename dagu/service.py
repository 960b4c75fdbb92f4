"""Long-running processes: the scheduler (and, with the API, the server and start-all).

Order matters at start: take the scheduler lock, fork the fork server (no thread, no database
yet), then open the store and start threads."""
from __future__ import annotations

import logging
import signal
import sys
import threading

from dagu.config import Config
from dagu.forkserver import ForkServer
from dagu.launcher import WakeSocket, spawn
from dagu.scheduler import Scheduler, SchedulerLock
from dagu.store import RunStore

log = logging.getLogger("dagu")


def setup_logging(debug: bool = False) -> None:
    """One line per event on stderr (systemd's journal adds the time)."""
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class Launcher:
    """Starts runner processes: through the fork server, else a new interpreter."""

    def __init__(self, fork: ForkServer, wake: WakeSocket | None, config_file: str | None = None):
        self.fork = fork
        self.wake = wake
        self.config_file = config_file

    def __call__(self, args: list[str]) -> None:
        if self.config_file and "--config" not in args:
            args = args + ["--config", self.config_file]   # runners see the service's config
        if self.fork.spawn(args) is not None:
            return
        proc = spawn(args)
        # reap it, and wake the loop the moment it ends (its slot is free)
        threading.Thread(target=self._reap, args=(proc,), daemon=True).start()

    def _reap(self, proc) -> None:
        proc.wait()
        if self.wake is not None:
            self.wake.wake()


def _stop_on_signals(stop: threading.Event, wake: WakeSocket) -> None:
    def handler(signum, _frame):
        # no logging here: the signal may land inside a log write (re-entrant stderr write)
        stop.set()
        wake.wake()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def run_scheduler(config: Config) -> int:
    """`dagu scheduler`: cron and queue until SIGTERM/SIGINT."""
    setup_logging(config.debug)
    lock = SchedulerLock(config.data_dir)
    lock.acquire()
    fork = ForkServer()
    fork.start()
    store = RunStore(config.db_path)
    wake = WakeSocket(config.data_dir)
    stop = threading.Event()
    _stop_on_signals(stop, wake)
    log.info("scheduler started: dags=%s data=%s", config.dags_dir, config.data_dir)
    try:
        Scheduler(config, store, Launcher(fork, wake, config.config_file)).serve(stop, wake)
    finally:
        wake.close()
        fork.close()
        store.close()
        lock.release()
    log.info("scheduler stopped (runs keep going)")
    return 0


def run_server(config: Config, with_scheduler: bool = False) -> int:
    """`dagu server` (API only) and `dagu start-all` (API and scheduler in one process)."""
    from dagu.api.app import App, build_router
    from dagu.api.server import DaguHTTPServer
    from dagu.dags import DagRegistry
    setup_logging(config.debug)
    lock = SchedulerLock(config.data_dir) if with_scheduler else None
    if lock:
        lock.acquire()
    fork = ForkServer()
    fork.start()           # before any thread or database connection exists
    store = RunStore(config.db_path)
    wake = WakeSocket(config.data_dir) if with_scheduler else None
    launcher = Launcher(fork, wake, config.config_file)
    app = App(config, store, DagRegistry(config.dags_dir), launcher, scheduler_running=with_scheduler)
    try:
        server = DaguHTTPServer((config.host, config.port), app, build_router(), config.base_path,
                                config.max_handler_threads)
    except OSError as exc:
        fork.close()
        store.close()
        if lock:
            lock.release()
        from dagu.errors import DaguError
        raise DaguError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    stop = threading.Event()
    threads = [threading.Thread(target=server.serve_forever, name="http", daemon=True)]
    if with_scheduler:
        _stop_on_signals(stop, wake)
        threads.append(threading.Thread(target=Scheduler(config, store, launcher).serve,
                                        args=(stop, wake), name="scheduler", daemon=True))
    else:
        _stop_on_signals(stop, _NoWake())
    for t in threads:
        t.start()
    host, port = server.server_address[:2]
    log.info("listening on http://%s:%d%s/api/v2 (dags=%s)", host, port, config.base_path,
             config.dags_dir)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
        for t in threads[1:]:
            t.join(timeout=10)
        if wake:
            wake.close()
        fork.close()
        store.close()
        if lock:
            lock.release()
    log.info("stopped (runs keep going)")
    return 0


class _NoWake:
    def wake(self) -> None:
        pass
