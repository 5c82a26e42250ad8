# syntax=docker/dockerfile:1
#
# The Jobwire image: `jobwire serve` by default, and the base image of worker pods
# (FROM it, copy a tasks module, run `jobwire worker your.tasks.settings`).
#
#   docker build -t jobwire:0.1.0 .
#   docker run --rm -p 8080:8080 -e JOBWIRE_TOKENS=admin-secret:admin,worker-secret:worker \
#       jobwire:0.1.0        # the embedded SQLite store, in /var/lib/jobwire
#   ... -e JOBWIRE_BACKEND=redis://redis:6379 ...   # or a Redis / PostgreSQL URL
#
# The service binds 0.0.0.0 in the container, and refuses to start without tokens
# (JOBWIRE_TOKENS or JOBWIRE_TOKENS_FILE; the Helm chart passes them from a Secret).
# JOBWIRE_INSECURE=true runs it without tokens: only for a private test network.

ARG PYTHON_VERSION=3.11

# ---- build: wheels of the dependencies, then of jobwire itself ----------------------
# The full python image has a compiler, for any dependency without a binary wheel.
FROM python:${PYTHON_VERSION} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src

# Dependencies first, from the lockfile alone (jobwire[server], every version pinned and
# hashed; `make lock` rewrites it): this layer is rebuilt only when the lock changes, not on
# every source edit. The image holds what `jobwire serve` and `jobwire worker` run, no dev tools.
COPY requirements/server.txt /tmp/requirements.txt
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r /tmp/requirements.txt \
    && cp /tmp/requirements.txt /wheels/requirements.txt

# Then the package itself (no dependencies: they are built above).
COPY pyproject.toml README.md LICENSE ./
COPY service ./service
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# ---- runtime: slim python, the wheels installed, no compiler ------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime

ARG JOBWIRE_UID=10001

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    JOBWIRE_HOST=0.0.0.0 \
    JOBWIRE_HTTP_PORT=8080 \
    JOBWIRE_LOG_FORMAT=json \
    JOBWIRE_BACKEND=sqlite:////var/lib/jobwire/jobwire.db

# A fixed, unprivileged user (the chart's securityContext runs as the same UID), and the
# one directory it may write: the embedded store's default home (the chart always gives
# the service its own store URL).
RUN groupadd --system --gid "${JOBWIRE_UID}" jobwire \
    && useradd --system --uid "${JOBWIRE_UID}" --gid jobwire --no-create-home \
        --home-dir /app --shell /usr/sbin/nologin jobwire \
    && install -d -o "${JOBWIRE_UID}" -g "${JOBWIRE_UID}" -m 0750 /var/lib/jobwire

# Dependencies (cached while the lockfile is unchanged), then jobwire;
# the wheels are bind-mounted from the build stage, so none of them lands in a layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels -r /wheels/requirements.txt
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    pip install --no-cache-dir --no-index --no-deps /dist/*.whl

# Worker images put their tasks here (`jobwire worker` imports from the working directory).
WORKDIR /app
USER ${JOBWIRE_UID}:${JOBWIRE_UID}

# 8080: REST (JOBWIRE_HTTP_PORT). 50051: gRPC (JOBWIRE_GRPC_PORT).
EXPOSE 8080 50051

# Liveness of the REST server, with nothing but the standard library (no curl in the image).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('JOBWIRE_HTTP_PORT', '8080'), timeout=3)"]

# No init process needed: both `jobwire serve` and `jobwire worker` handle SIGTERM
# themselves (drain, then exit 0).
CMD ["jobwire", "serve"]
