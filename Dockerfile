# Tokentrail: one image for the API (default command) and the worker (`docker run IMAGE tokentrail worker`).
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH TOKENTRAIL_DATABASE_URL=sqlite:////data/tokentrail.db
RUN groupadd --system tokentrail && useradd --system --gid tokentrail --home-dir /srv tokentrail \
 && mkdir -p /data /srv && chown tokentrail:tokentrail /data
WORKDIR /srv
# Dependencies first (a layer that survives code changes): install the project once from its metadata alone.
COPY pyproject.toml README.md ./
RUN python -m venv /opt/venv \
 && mkdir -p app/sources && touch app/__init__.py app/sources/__init__.py \
 && pip install . && pip uninstall -y tokentrail && rm -rf app build *.egg-info
# The code, its templates and migrations live together in /srv: the package finds both next to itself.
COPY app ./app
COPY templates ./templates
COPY migrations ./migrations
RUN pip install --no-deps -e . && chown -R root:root /srv && chmod -R a+rX /srv
USER tokentrail
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# `serve` applies the migrations before it listens (so does `worker`), then runs the API and an in-process worker.
CMD ["tokentrail", "serve", "--host", "0.0.0.0", "--port", "8000"]
