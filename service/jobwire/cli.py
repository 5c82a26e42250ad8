"""The ``jobwire`` command: run the service or workers, enqueue and inspect jobs, pause
queues, set their limits, and retry, delete or abort jobs in bulk.

Client commands (enqueue, status, jobs, retry, abort, delete, queues, info, pause,
resume, limits, retry-jobs, delete-jobs, abort-jobs) talk to ``--url``: the service
(``http(s)://``, ``grpc(s)://``) or a store straight (``redis://``, ``postgresql://``,
``sqlite:///path.db``).
"""

import argparse
import asyncio
import importlib
import logging
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

import orjson

from jobwire.backends import redact_url
from jobwire.errors import Forbidden, InvalidJobState, JobNotFound, JobwireError, Unauthenticated
from jobwire.flow import BulkAction, JobFilter, QueueSettings
from jobwire.job import Job, Status
from jobwire.queue import Queue
from jobwire.worker import Worker

DEFAULT_URL = "http://127.0.0.1:8080"  # client commands talk to the local service
# What `jobwire serve` can own (the service's own URLs are for clients, not for serve).
STORE_SCHEMES = (
    "redis", "rediss", "redis+cluster", "rediss+cluster",
    "postgres", "postgresql", "postgresql+asyncpg", "sqlite",
)  # fmt: skip
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
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class CliError(Exception):
    """A failure the command reports as one line (and exit code 1)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jobwire`` console script.

    Returns:
        The exit code: 0 done, 1 failed (one line on stderr says why), 2 bad usage.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=_LOG_FORMAT)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "worker":
            return _run_workers(args.settings, args.workers, args.burst, args.concurrency)
        return asyncio.run(_client_command(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every failure: one line saying what to do
        if args.log_level == "debug":
            traceback.print_exc()
        print(f"jobwire {args.command}: {explain(exc, args)}", file=sys.stderr)
        return 1


def explain(exc: BaseException, args: argparse.Namespace) -> str:
    """One line for a failure: what went wrong and, where it helps, what to do."""
    url = redact_url(getattr(args, "url", None) or getattr(args, "backend", None) or "")
    name = type(exc).__name__
    if isinstance(exc, CliError):
        return str(exc)
    if args.command == "serve":
        return f"{name}: {exc}"
    if isinstance(exc, JobNotFound):
        return f"no job {args.job_id!r} in queue {args.queue!r} (check the id, or pass --queue)"
    if isinstance(exc, InvalidJobState):
        return f"{exc}"
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    if isinstance(exc, ImportError) and "pip install" in str(exc):
        return str(exc).split(" (")[0]  # names the extra to install
    if name == "AioRpcError":  # grpc, not imported here (an extra)
        code, details = exc.code().name, exc.details()  # type: ignore[attr-defined]
        return f"{url}: gRPC {code}: {details} (is the service running? check --url)"
    unreachable = isinstance(exc, OSError) or name in ("ConnectionError", "TimeoutError")
    if unreachable or "Connection" in name:
        reason = getattr(exc, "os_error", None) or exc  # aiohttp's own text says "ssl:default"
        return f"cannot reach {url}: {reason} (is it running? set --url or $JOBWIRE_URL)"
    if isinstance(exc, JobwireError | ValueError):
        return str(exc)
    return f"{name}: {exc} (--log-level debug shows the traceback)"


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    parser = _Parser(
        prog="jobwire", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"jobwire {version('jobwire')}")
    levels = ["debug", "info", "warning", "error"]
    level_help = "log level (env JOBWIRE_LOG_LEVEL; default info); debug also prints tracebacks"
    default_level = os.environ.get("JOBWIRE_LOG_LEVEL", "info")
    parser.add_argument("--log-level", default=default_level, choices=levels, help=level_help)
    common = _Parser(add_help=False)  # so that it may come after the command too
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=levels, help=level_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve_parser(commands, common)
    _worker_parser(commands, common)
    store = _Parser(add_help=False, parents=[common])
    store.add_argument(
        "--url",
        default=os.environ.get("JOBWIRE_URL", DEFAULT_URL),
        help=f"the service or a store (env JOBWIRE_URL; default {DEFAULT_URL})",
    )
    client = _Parser(add_help=False, parents=[store])
    client.add_argument("--queue", default="default", help="queue name (default: default)")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, parents=[client])

    enqueue = command("enqueue", "enqueue a job; prints it as JSON")
    enqueue.add_argument("function", help="name of the task function")
    enqueue.add_argument(
        "--kwargs", type=_json_object, default={}, help="keyword arguments, a JSON object"
    )
    enqueue.add_argument("--timeout", type=float, help="seconds before the task is cancelled")
    enqueue.add_argument("--retries", type=int, help="retries after the first attempt")
    enqueue.add_argument(
        "--ttl", type=int, help="seconds the finished job stays readable (0 forever)"
    )
    enqueue.add_argument("--key", help="dedup key: no second job while one with it is live")
    enqueue.add_argument(
        "--concurrency-key", help="groups jobs for the queue's per-key limits (a tenant id, say)"
    )
    enqueue.add_argument("--heartbeat", type=float, help="lease length in seconds")
    when = enqueue.add_mutually_exclusive_group()
    when.add_argument("--scheduled", type=float, help="Unix time before which it does not start")
    when.add_argument("--delay", type=float, help="start no sooner than this many seconds")
    enqueue.add_argument("--retry-delay", type=float, default=0.0, help="seconds before a retry")
    enqueue.add_argument(
        "--retry-backoff", action="store_true", help="double the retry delay at each retry"
    )
    enqueue.add_argument(
        "--priority", type=int, default=0, help="-1000..1000, higher runs first (default 0)"
    )
    enqueue.add_argument(
        "--wait", type=float, metavar="SECONDS", help="wait up to this long for the result"
    )

    status = command("status", "show a job as JSON")
    status.add_argument("job_id", help="the job's id")
    status.add_argument("--wait", type=float, metavar="SECONDS", help="wait until it finishes")

    jobs = command("jobs", "list a queue's jobs, newest first (one line each)")
    jobs.add_argument("--status", choices=[s.value for s in Status], help="only this status")
    jobs.add_argument("--function", help="only jobs of this function")
    jobs.add_argument("--key-prefix", help="only jobs whose dedup key starts with this")
    jobs.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    jobs.add_argument("--json", action="store_true", help="print JSON lines, every field")

    for name, help_text in [
        ("retry", "queue a finished (complete, failed, aborted) job again"),
        ("abort", "abort a job (a running one stops when its worker hears)"),
        ("delete", "delete a job, whatever its status"),
    ]:
        sub = command(name, help_text)
        sub.add_argument("job_id", help="the job's id")
        if name == "abort":
            sub.add_argument("--error", default="aborted", help="the reason, kept on the job")

    command("queues", "list the queues that hold jobs")
    command("info", "show a queue's counts, workers and throughput")
    _flow_parsers(commands, store)
    return parser


def _flow_parsers(commands: Any, store: argparse.ArgumentParser) -> None:
    """The commands about a whole queue, which they name as their first argument."""

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(
            name, help=help_text, description=help_text, parents=[store]
        )
        sub.add_argument("queue", help="the queue's name")
        return sub

    command("pause", "pause a queue: no worker leases its jobs (running ones finish)")
    command("resume", "resume a paused queue")
    limits = command("limits", "show a queue's limits and pause state, or replace the limits")
    limits.add_argument(
        "--set",
        dest="settings",
        type=_queue_settings,
        metavar="JSON",
        help='the new limits, e.g. \'{"max_active": 5, "rate": {"limit": 50, "period_s": 1}}\' '
        "(keys: max_active, max_active_per_key, rate, rate_per_key, functions); '{}' removes all",
    )
    for action, help_text in [
        ("retry", "queue again every finished job the filter matches"),
        ("delete", "delete every job the filter matches, whatever its status"),
        ("abort", "abort every queued, scheduled or active job the filter matches"),
    ]:
        sub = command(f"{action}-jobs", f"{help_text}; prints how many")
        sub.add_argument("--status", choices=[s.value for s in Status], help="only this status")
        sub.add_argument("--function", help="only jobs of this function")
        sub.add_argument("--key-prefix", help="only jobs whose dedup key starts with this")
        sub.add_argument(
            "--before", type=float, metavar="UNIX_TIME", help="only jobs enqueued before"
        )
        sub.add_argument(
            "--after", type=float, metavar="UNIX_TIME", help="only jobs enqueued at/after"
        )
        sub.add_argument("--all", action="store_true", help="every job of the queue (no filter)")


def _serve_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the service (REST and gRPC); needs jobwire[server]",
        description="Run the service. Every flag is also a JOBWIRE_* environment variable.",
    )
    serve.add_argument(
        "--backend",
        help="store URL: redis://, rediss://, redis+cluster://host:port,..., postgresql://, "
        "sqlite:///path.db "
        "(env JOBWIRE_BACKEND; default sqlite:///jobwire.db)",
    )
    serve.add_argument("--host", help="bind address (env JOBWIRE_HOST; default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="REST port (default 8080)")
    serve.add_argument("--grpc-port", type=int, help="gRPC port (default 50051; 0: no gRPC)")
    serve.add_argument("--tokens", help="'token:role,...' (env JOBWIRE_TOKENS)")
    serve.add_argument("--tokens-file", help="file of 'token:role' lines")
    serve.add_argument("--tls-cert", help="TLS certificate (PEM)")
    serve.add_argument("--tls-key", help="TLS private key (PEM)")
    serve.add_argument("--log-format", choices=["text", "json"], help="log line format")
    serve.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow binding a non-loopback address without tokens",
    )


def _worker_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    worker = commands.add_parser(
        "worker",
        parents=[common],
        help="run workers from a settings dict",
        description="Run workers from a settings dict (SAQ's: queue, functions, ...).",
    )
    worker.add_argument(
        "settings", help="dotted path to a settings dict, e.g. examples.tasks.settings"
    )
    worker.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    worker.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    worker.add_argument(
        "--concurrency", type=int, help="jobs at once per process (overrides settings)"
    )


def _queue_settings(text: str) -> QueueSettings:
    try:
        return QueueSettings.from_dict(_json_object(text))
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object like '{{\"a\": 1}}': {text!r}")
    return value


async def _client_command(args: argparse.Namespace) -> int:
    async with Queue.from_url(args.url, name=args.queue) as queue:
        if args.command == "info":
            info = await queue.info()
            info.pop("scheduled", None)  # already in counts
            _print(info)
        elif args.command == "queues":
            for name in await queue.queues():
                print(name)
        elif args.command == "jobs":
            await _list_jobs(queue, args)
        elif args.command == "enqueue":
            return await _enqueue(queue, args)
        elif args.command in ("pause", "resume", "limits"):
            await _queue_state(queue, args)
        elif args.command.endswith("-jobs"):
            print(
                await queue.bulk(BulkAction(args.command.removesuffix("-jobs")), _job_filter(args))
            )
        elif args.command == "delete":
            await queue.delete(args.job_id)
            print(f"deleted {args.job_id}")
        else:
            if args.command == "abort":
                job = await queue.abort(args.job_id, error=args.error)
            elif args.command == "retry":
                job = await queue.retry(args.job_id)
            elif args.wait is not None:
                job = await queue.wait(args.job_id, timeout=args.wait)
            else:
                found = await queue.job(args.job_id)
                if found is None:
                    raise JobNotFound(args.job_id)
                job = found
            _print_job(job)
    return 0


async def _enqueue(queue: Queue, args: argparse.Namespace) -> int:
    scheduled = args.scheduled or (time.time() + args.delay if args.delay else 0)
    job = await queue.enqueue(
        args.function,
        timeout=args.timeout,
        retries=args.retries,
        ttl=args.ttl,
        key=args.key,
        concurrency_key=args.concurrency_key,
        heartbeat=args.heartbeat,
        scheduled=scheduled,
        retry_delay=args.retry_delay,
        retry_backoff=args.retry_backoff,
        priority=args.priority,
        **args.kwargs,
    )
    if job is None:
        raise CliError(
            f"not enqueued: a job with key {args.key!r} is already queued, scheduled or "
            f"active in queue {args.queue!r}"
        )
    if args.wait is not None:
        job = await queue.wait(job, timeout=args.wait)
    _print_job(job)
    return 1 if job.status in (Status.FAILED, Status.ABORTED) else 0


async def _queue_state(queue: Queue, args: argparse.Namespace) -> None:
    """Pause, resume or set limits as asked, then print the queue's state (REST's shape)."""
    if args.command == "pause":
        await queue.pause()
    elif args.command == "resume":
        await queue.resume()
    elif args.settings is not None:
        await queue.configure(args.settings)
    settings = await queue.settings()
    _print({"queue": queue.name, "paused": await queue.paused(), "settings": settings.to_dict()})


def _job_filter(args: argparse.Namespace) -> JobFilter:
    where = JobFilter(
        status=Status(args.status) if args.status else None,
        function=args.function,
        key_prefix=args.key_prefix,
        enqueued_before=args.before,
        enqueued_after=args.after,
    )
    if where == JobFilter() and not args.all:
        raise CliError(
            f"no filter: pass --all to {args.command.removesuffix('-jobs')} every job of "
            f"queue {args.queue!r}, or a filter (--status, --function, --key-prefix, ...)"
        )
    return where


async def _list_jobs(queue: Queue, args: argparse.Namespace) -> None:
    # The store filters by status; other filters look through a larger page.
    where = JobFilter(function=args.function, key_prefix=args.key_prefix)
    fetch = args.limit if where == JobFilter() else max(args.limit, 10_000)
    jobs = [job for job in await queue.jobs(args.status, limit=fetch) if where.matches(job)][
        : args.limit
    ]
    if args.json:
        for job in jobs:
            print(orjson.dumps(_job_fields(job), default=str).decode())
        return
    print(f"{'ID':36}  {'STATUS':9}  {'ATTEMPTS':8}  {'CREATED':19}  FUNCTION")
    for job in jobs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created))
        print(f"{job.id:36}  {job.status:9}  {job.attempts:8}  {created:19}  {job.function}")


_JOB_FIELDS = (
    "id",
    "queue",
    "function",
    "kwargs",
    "key",
    "concurrency_key",
    "status",
    "attempts",
    "progress",
    "result",
    "error",
    "created",
    "started",
    "completed",
)


def _job_fields(job: Job) -> dict[str, Any]:
    return {f: getattr(job, f) for f in _JOB_FIELDS}


def _print_job(job: Job) -> None:
    _print(_job_fields(job))


def _print(value: Any) -> None:
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())


def _serve(args: argparse.Namespace) -> int:
    try:
        from pydantic import ValidationError

        from jobwire.server.logs import configure_logging
        from jobwire.server.serve import serve
        from jobwire.server.settings import Settings
    except ImportError as exc:
        raise CliError(
            f"the service needs `pip install 'jobwire[server]'` (missing: {exc.name})"
        ) from exc

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
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        print(f"jobwire serve: invalid configuration: {problems}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"jobwire serve: invalid configuration: {exc}", file=sys.stderr)
        return 2
    scheme = urlsplit(settings.backend).scheme.lower()
    if scheme not in STORE_SCHEMES:
        print(
            f"jobwire serve: the backend must be a store the service owns: redis://, "
            f"rediss://, redis+cluster://, postgresql://, or sqlite:///path.db; "
            f"got {redact_url(settings.backend)!r}",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_format, settings.log_level)
    args.backend = settings.backend  # for the failure line
    serve(settings)
    return 0


def _run_workers(settings_path: str, processes: int, burst: bool, concurrency: int | None) -> int:
    load_settings(settings_path)  # a bad path fails here, once, not in every child
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
    logging.basicConfig(level=logging.getLogger().level or logging.INFO, format=_LOG_FORMAT)
    try:
        code = asyncio.run(_work(settings_path, burst, concurrency))
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        args = argparse.Namespace(url=os.environ.get("JOBWIRE_URL", ""), queue="", job_id="")
        print(f"jobwire worker: {explain(exc, args)}", file=sys.stderr)
        code = 1
    sys.exit(code)


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
        CliError: The path does not name a dict with at least ``queue`` and ``functions``
            (the message says which part is wrong).
    """
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise CliError(f"settings must be a dotted path like 'app.tasks.settings', got {path!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise CliError(
                f"no module {exc.name!r} to import {path!r} from: run in the directory that "
                "holds it, or add that directory to PYTHONPATH"
            ) from exc
        raise CliError(f"importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise CliError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, attribute):
        raise CliError(f"module {module_name!r} has no {attribute!r} (a settings dict)")
    settings = getattr(module, attribute)
    if not isinstance(settings, dict):
        raise CliError(f"{path} is a {type(settings).__name__}, not a settings dict")
    missing = [key for key in ("queue", "functions") if key not in settings]
    if missing:
        raise CliError(f"{path} has no {' or '.join(map(repr, missing))} key")
    return settings


if __name__ == "__main__":
    sys.exit(main())
