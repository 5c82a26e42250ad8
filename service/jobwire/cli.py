"""The ``jobwire`` command: run workers, enqueue jobs and inspect queues."""

import argparse
import asyncio
import importlib
import logging
import multiprocessing
import os
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from jobwire.errors import Forbidden, JobwireError, Unauthenticated
from jobwire.queue import Queue
from jobwire.worker import Worker

DEFAULT_URL = "http://127.0.0.1:8080"  # client commands talk to the local service
_WORKER_OPTIONS = (
    "functions",
    "cron_jobs",
    "concurrency",
    "startup",
    "shutdown",
    "before_process",
    "after_process",
    "shutdown_grace_s",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jobwire`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        return _serve(args)
    if args.command == "worker":
        return _run_workers(args.settings, args.workers, args.burst, args.concurrency)
    try:
        return asyncio.run(_client_command(args))
    except (TimeoutError, JobwireError, OSError) as exc:  # OSError: the service is not up
        print(f"jobwire {args.command}: {exc or type(exc).__name__}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobwire", description=__doc__)
    parser.add_argument(
        "--log-level",
        default=os.environ.get("JOBWIRE_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service (REST and gRPC)")
    serve.add_argument("--backend", help="store URL (env JOBWIRE_BACKEND)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="REST port (default 8080)")
    serve.add_argument("--grpc-port", type=int, help="gRPC port (default 50051; 0: no gRPC)")
    serve.add_argument("--tokens", help="'token:role,...' (env JOBWIRE_TOKENS)")
    serve.add_argument("--tokens-file", help="file of 'token:role' lines")
    serve.add_argument("--tls-cert", help="TLS certificate (PEM)")
    serve.add_argument("--tls-key", help="TLS private key (PEM)")
    serve.add_argument("--log-format", choices=["text", "json"])
    serve.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow binding a non-loopback address without tokens",
    )

    worker = commands.add_parser("worker", help="run workers from a settings dict")
    worker.add_argument(
        "settings", help="dotted path to a settings dict, e.g. examples.tasks.settings"
    )
    worker.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    worker.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    worker.add_argument(
        "--concurrency", type=int, help="jobs at once per process (overrides settings)"
    )

    for name, help_text in [
        ("enqueue", "enqueue a job"),
        ("status", "show a job"),
        ("abort", "abort a job"),
        ("info", "show queue counts"),
    ]:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--url", default=os.environ.get("JOBWIRE_URL", DEFAULT_URL))
        sub.add_argument("--queue", default="default")
        if name == "enqueue":
            sub.add_argument("function")
            sub.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments")
            sub.add_argument(
                "--wait", type=float, help="wait up to this many seconds for the result"
            )
        elif name in ("status", "abort"):
            sub.add_argument("job_id")
    return parser


async def _client_command(args: argparse.Namespace) -> int:
    async with Queue.from_url(args.url, name=args.queue) as queue:
        if args.command == "info":
            _print(await queue.info())
            return 0
        if args.command == "enqueue":
            job = await queue.enqueue(args.function, **_parse_kwargs(args.kwargs))
            if job is not None and args.wait is not None:
                job = await queue.wait(job, timeout=args.wait)
        elif args.command == "abort":
            job = await queue.abort(args.job_id)
        else:
            job = await queue.job(args.job_id)
        if job is None:
            print("no job (duplicate key, or no such id)", file=sys.stderr)
            return 1
        _print({f: getattr(job, f) for f in _JOB_FIELDS})
        return 0


_JOB_FIELDS = (
    "id",
    "queue",
    "function",
    "kwargs",
    "status",
    "attempts",
    "progress",
    "result",
    "error",
    "created",
    "started",
    "completed",
)


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from jobwire.server.logs import configure_logging
    from jobwire.server.serve import serve
    from jobwire.server.settings import Settings

    flags = (
        "backend",
        "host",
        "http_port",
        "grpc_port",
        "tokens",
        "tokens_file",
        "tls_cert",
        "tls_key",
        "log_format",
        "insecure",
    )
    overrides = {name: getattr(args, name) for name in flags if getattr(args, name) is not None}
    try:
        settings = Settings(log_level=args.log_level, **overrides)
    except (ValidationError, ValueError, OSError) as exc:
        print(f"jobwire serve: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    serve(settings)
    return 0


def _parse_kwargs(text: str) -> dict[str, Any]:
    kwargs = orjson.loads(text)
    if not isinstance(kwargs, dict):
        raise SystemExit("--kwargs must be a JSON object")
    return kwargs


def _print(value: Any) -> None:
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())


def _run_workers(settings_path: str, processes: int, burst: bool, concurrency: int | None) -> int:
    if processes <= 1:
        return asyncio.run(_work(settings_path, burst, concurrency))
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(
            target=_child, args=(settings_path, burst, concurrency), name=f"jobwire-worker-{i}"
        )
        for i in range(processes)
    ]
    for child in children:
        child.start()
    try:
        for child in children:
            child.join()
    except KeyboardInterrupt:  # the children got the same SIGINT and drain on their own
        for child in children:
            child.join()
    return max((child.exitcode or 0) for child in children)


def _child(settings_path: str, burst: bool, concurrency: int | None) -> None:
    logging.basicConfig(
        level=logging.getLogger().level or logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(asyncio.run(_work(settings_path, burst, concurrency)))


async def _work(settings_path: str, burst: bool, concurrency: int | None) -> int:
    settings = load_settings(settings_path)
    queue = settings["queue"]
    if isinstance(queue, str):
        queue = Queue.from_url(queue)
    options = {name: settings[name] for name in _WORKER_OPTIONS if name in settings}
    if concurrency is not None:
        options["concurrency"] = concurrency
    worker = Worker(queue, burst=burst, **options)
    try:
        await worker.start()
    except (Unauthenticated, Forbidden):
        return 1  # the worker logged why, in one line
    finally:
        await queue.close()
    return 0


def load_settings(path: str) -> dict[str, Any]:
    """Import ``package.module.attribute`` and return that settings dict.

    Raises:
        SystemExit: The path does not name a dict with at least ``queue`` and ``functions``.
    """
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise SystemExit(f"settings must be a dotted path like 'app.tasks.settings', got {path!r}")
    sys.path.insert(0, os.getcwd())
    settings = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(settings, dict) or "queue" not in settings or "functions" not in settings:
        raise SystemExit(f"{path} must be a dict with at least 'queue' and 'functions'")
    return settings


if __name__ == "__main__":
    sys.exit(main())
