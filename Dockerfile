# Tokentrail: one image for the API (default command) and the worker (`tokentrail worker`); compose.yaml runs both.
# The base image is pinned to a Python patch release, and every package comes from requirements.txt, a lock with
# hashes (`make lock` regenerates it from pyproject.toml): a rebuild installs the same bytes or fails.
FROM python:3.11.14-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH TOKENTRAIL_DATABASE_URL=sqlite:////data/tokentrail.db
RUN groupadd --system tokentrail && useradd --system --gid tokentrail --home-dir /srv tokentrail \
 && mkdir -p /data /srv && chown tokentrail:tokentrail /data
WORKDIR /srv
# Dependencies first, a layer that survives code changes: exactly what the lock pins (it is the whole closure, so
# nothing is resolved here), each file checked against its hash, then checked for consistency.
COPY requirements.txt ./
RUN python -m venv /opt/venv && pip install --require-hashes --no-deps -r requirements.txt && pip check
# The code, its templates, migrations and App manifest live together in /srv: the package finds them next to itself.
COPY pyproject.toml README.md app.yml ./
COPY app ./app
COPY templates ./templates
COPY migrations ./migrations
# Built with the locked setuptools (no build isolation): nothing is fetched that the lock does not pin.
RUN pip install --no-deps --no-build-isolation -e . && chown -R root:root /srv && chmod -R a+rX /srv
USER tokentrail
EXPOSE 8000
VOLUME ["/data"]
# The same check for both roles (a worker serves no HTTP): the database answers and, where a worker runs (serve's
# in-process one, or `tokentrail worker`), its heartbeat is fresh. API replicas with TOKENTRAIL_RUN_WORKER=false
# check the database only.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["tokentrail", "healthcheck"]
# `serve` applies the migrations before it listens (so does `worker`), then runs the API and an in-process worker.
CMD ["tokentrail", "serve", "--host", "0.0.0.0", "--port", "8000"]
