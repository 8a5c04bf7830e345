"""Run the HTTP API with uvicorn (one process, or ``[api] workers`` of them), logs that never
carry a token."""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from soredi_sync.api.app import create_app
from soredi_sync.api.connections import uvicorn_limits
from soredi_sync.api.settings import ApiSettings, DecisionLogSettings
from soredi_sync.bootstrap import App
from soredi_sync.observability.logging import RedactSecrets

if TYPE_CHECKING:
    import uvicorn


class RedactTokens(RedactSecrets):
    """The redaction filter on uvicorn's own handlers (text logs).

    A second line of defence: nothing here logs the Authorization header or a token, and
    uvicorn's access log writes the request line only. This catches a token that a client
    sends where it should not (a query string, a message id), masking it inside the access
    record's arguments so that uvicorn's access formatter still writes the line.
    """


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with :class:`RedactTokens` on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": f"{__name__}.RedactTokens"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_tokens")
    return config


def uvicorn_config(
    application: Any, api_settings: ApiSettings, *, access_log: bool = True, json_logs: bool = False
) -> uvicorn.Config:
    """The ``uvicorn.Config`` every API server of the project runs with (``serve``, ``run``, in
    one process or in each worker)."""
    import uvicorn

    from soredi_sync.observability.logging import uvicorn_log_config

    return uvicorn.Config(
        application,
        host=api_settings.host,
        port=api_settings.port,
        workers=1,
        # JSON logs: uvicorn's lines go through the root handler in the same format.
        log_config=uvicorn_log_config() if json_logs else log_config(),
        access_log=access_log,
        server_header=False,
        # Header deadline and cap, keep-alive, concurrency and backlog from [api].
        **uvicorn_limits(api_settings),
    )


def redact_root_handlers() -> None:
    """:class:`RedactTokens` on the root logger's handlers (before a server starts)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactTokens())


def serve(
    app: App,
    api_settings: ApiSettings,
    log_settings: DecisionLogSettings,
    *,
    access_log: bool = True,
    json_logs: bool = False,
) -> int:
    """Serve the API on ``api_settings.host:port`` until interrupted, with
    ``api_settings.workers`` processes (``api/workers.py``); each flushes its decision log on
    the way out. The exit status.

    Several workers: the metrics are in prometheus_client's multiprocess mode
    (:func:`~soredi_sync.observability.metrics.metrics_across_processes`), so that a scrape
    of any worker shows the sums over all of them."""
    import uvicorn

    redact_root_handlers()

    def config(served: App) -> uvicorn.Config:
        return uvicorn_config(
            create_app(served, api_settings, log_settings),
            api_settings,
            access_log=access_log,
            json_logs=json_logs,
        )

    if api_settings.workers == 1:
        uvicorn.Server(config(app)).run()
        return 0
    from soredi_sync.api.workers import bound, supervise
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.observability.metrics import metrics_across_processes, process_ended

    with metrics_across_processes():
        listener = bound(api_settings.host, api_settings.port, api_settings.backlog)
        if listener is None:
            return 1
        app.engine.dispose()  # no connection of this process is inherited by a worker

        def run_worker(_number: int) -> None:
            with bootstrap(app.settings, app.reference) as own:
                uvicorn.Server(config(own)).run(sockets=[listener])

        try:
            return supervise(api_settings.workers, run_worker, on_exit=process_ended)
        finally:
            listener.close()
