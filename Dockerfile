# LogCaster in a container (docs/operations.md, "Containers"). Build:
#   docker build -t logcaster .
# Run (the data directory is a volume; listeners bind 0.0.0.0 inside the container):
#   docker run -p 9999:9999 -p 9998:9998 -p 8080:8080 -v logcaster-data:/var/lib/logcaster logcaster

# Stage 1: the virtual environment, from the hash-pinned lock file only.
FROM python:3.11-slim-bookworm AS build
WORKDIR /opt/logcaster
# The C extensions (scripts/build-native): a compiler, and for the store's collector of
# Hyperscan reports libhs's headers, Intel's Hyperscan on amd64, its Vectorscan fork elsewhere.
# hadolint ignore=DL3008
RUN apt-get update \
    && if [ "$(dpkg --print-architecture)" = amd64 ]; then hs=libhyperscan-dev; else hs=libvectorscan-dev; fi \
    && apt-get install -y --no-install-recommends gcc libc6-dev "$hs" \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/logcaster/.venv
COPY requirements.lock ./
RUN /opt/logcaster/.venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
COPY scripts/build-native ./scripts/
RUN ./scripts/build-native --required \
    && /opt/logcaster/.venv/bin/pip install --no-cache-dir --no-deps .

# Stage 2: the runtime, without build tools, as a user of its own.
FROM python:3.11-slim-bookworm
# libhs itself, which the collector links.
# hadolint ignore=DL3008
RUN apt-get update \
    && if [ "$(dpkg --print-architecture)" = amd64 ]; then hs=libhyperscan5; else hs=libvectorscan5; fi \
    && apt-get install -y --no-install-recommends "$hs" \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 logcaster \
    && useradd --system --uid 10001 --gid logcaster --home-dir /var/lib/logcaster logcaster \
    && mkdir -p /var/lib/logcaster \
    && chown logcaster:logcaster /var/lib/logcaster
COPY --from=build /opt/logcaster/.venv /opt/logcaster/.venv
COPY logcaster.example.yaml /etc/logcaster/logcaster.yaml
ENV PATH=/opt/logcaster/.venv/bin:$PATH \
    LOGCASTER_CONFIG=/etc/logcaster/logcaster.yaml \
    LOGCASTER_INGEST__HOST=0.0.0.0 \
    LOGCASTER_QUERY__HOST=0.0.0.0 \
    LOGCASTER_HTTP__HOST=0.0.0.0
USER 10001:10001
VOLUME ["/var/lib/logcaster"]
EXPOSE 9999 9998 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["logcaster"]
CMD ["serve", "-P", "/var/lib/logcaster"]
