# syntax=docker/dockerfile:1
#
# The Graylane server image: `docker build -t graylane .`
# Stage 1 builds the project's wheel and the wheels of everything `graylane[server]`
# needs; stage 2 installs them from those wheels only (no index, no compiler) and runs
# the server as an unprivileged user. See docs/operations.md.

FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
COPY pyproject.toml README.md ./
COPY sdk/ sdk/
COPY server/ server/
COPY migrations/ migrations/
COPY admin_ui/ admin_ui/

# The project's wheel (migrations and admin UI are force-included into it by
# pyproject.toml), then the wheels of its `server` extra, resolved against that wheel.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --no-deps --wheel-dir /wheels . \
    && for wheel in /wheels/graylane-*.whl; do \
           pip wheel --wheel-dir /wheels "${wheel}[server]"; \
       done


FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    GRAYLANE_DATA_DIR=/data \
    PORT=8080

# Wheels only, from the builder: nothing is fetched from an index here. The wheels are
# mounted for this step, not copied, so they do not stay in the image. The versions are
# the ones the builder resolved, so there is nothing to pin here.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    for wheel in /wheels/graylane-*.whl; do \
        pip install --no-cache-dir --no-index --find-links=/wheels "${wheel}[server]"; \
    done

# An unprivileged user owning the data directory (the SQLite file lives there when no
# GRAYLANE_DATABASE_URL is set; mount a volume at /data to keep it).
RUN groupadd --system --gid 10001 graylane \
    && useradd --system --uid 10001 --gid graylane --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin graylane \
    && mkdir -p /data \
    && chown graylane:graylane /data

COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/graylane-entrypoint

WORKDIR /data
# Numeric, so that a runtime can tell it is not root (Kubernetes' runAsNonRoot).
USER 10001:10001
EXPOSE 8080

# /healthz answers once the server has started (schema checked or migrated, configs
# loaded). Slim images have no curl: Python's standard library does the request, and an
# error status or a refused connection makes it exit non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=4)"]

# No arguments: `graylane-server serve` on 0.0.0.0:$PORT with $GRAYLANE_WORKERS workers
# (default 1), after `graylane-server migrate` when GRAYLANE_MIGRATE_ON_START=true.
# Arguments are run instead: `docker run --rm IMAGE graylane-server migrate`.
ENTRYPOINT ["graylane-entrypoint"]
