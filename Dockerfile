# soredi-sync as a container: the wheel built in one stage, installed with the [postgres] extra
# into a virtualenv, and only that virtualenv copied into a slim runtime that runs as a
# non-root user. docs/deploy.md says how it was built and checked.
#
#   docker build -t soredi-sync .
#   docker run --rm soredi-sync --version
#   docker run --rm soredi-sync demo
#   docker run -d -p 8080:8080 -e SOREDI_DATABASE_URL=postgresql+psycopg://... soredi-sync
#
# BASE_IMAGE: any Debian-based image with python3 (>= 3.11) and its venv module, the same in
# both stages (the virtualenv links to its interpreter). Where no public image can be pulled,
# build one locally and pass --build-arg BASE_IMAGE=... (docs/deploy.md: mmdebstrap).
ARG BASE_IMAGE=python:3.12-slim-bookworm

# -- build: the wheel, then a virtualenv with it and its [postgres] extra (no pip left in it) ----
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# Everything .dockerignore lets through: the package, config/, migrations/, pyproject.toml.
COPY . .
RUN python3 -m venv /opt/wheel-build \
 && /opt/wheel-build/bin/pip wheel --no-deps --wheel-dir /dist . \
 && python3 -m venv /opt/soredi-sync \
 && /opt/soredi-sync/bin/pip install "$(ls /dist/soredi_sync-*.whl)[postgres]" \
 && /opt/soredi-sync/bin/python -m pip uninstall --yes pip setuptools \
 && /opt/soredi-sync/bin/soredi-sync --version

# -- runtime -----------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ARG APP_UID=10001
ENV PATH=/opt/soredi-sync/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SOREDI_API__HOST=0.0.0.0 \
    SOREDI_API__PORT=8080
RUN groupadd --gid ${APP_UID} soredi \
 && useradd --no-log-init --uid ${APP_UID} --gid soredi --home-dir /var/lib/soredi-sync \
        --no-create-home --shell /usr/sbin/nologin soredi \
 && install -d -o soredi -g soredi -m 0750 /var/lib/soredi-sync
COPY --from=build /opt/soredi-sync /opt/soredi-sync
# The working directory is the user's own: the default SQLite file, `demo`'s folder and the
# sandbox's files land here. Mount a volume on it to keep them.
WORKDIR /var/lib/soredi-sync
USER ${APP_UID}:${APP_UID}
EXPOSE 8080
# /healthz: the process serves HTTP (`run` and `serve`). Load balancers should use /readyz.
# A `run --no-api` worker has no API: run it with --no-healthcheck (or a metrics-port probe).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SOREDI_API__PORT', '8080'), timeout=4)"]
# SIGTERM stops `run` cleanly (no job starts, a running sync stops at its next stage, the lease
# is released): give it `docker stop --time 90` / compose's stop_grace_period, as the unit does.
STOPSIGNAL SIGTERM
ENTRYPOINT ["soredi-sync"]
CMD ["run"]
