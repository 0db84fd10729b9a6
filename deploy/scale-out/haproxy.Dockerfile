# Debian's HAProxy, the one scripts/e2e tests deploy/scale-out/haproxy.cfg
# with; the certificate is mounted at run time.
FROM debian:bookworm-slim
# bookworm pins the version, so DL3008 is moot.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/*
COPY haproxy.cfg /etc/haproxy/haproxy.cfg
# The Debian package's own user; its uid is picked at install time.
# hadolint ignore=DL3066
USER haproxy
ENTRYPOINT ["haproxy", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
