# Debian's Kamailio, the one scripts/e2e tests deploy/scale-out/kamailio.cfg
# with; the config and the dispatcher list are mounted at run time.
FROM debian:bookworm-slim
# bookworm pins the version, so DL3008 is moot.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends kamailio \
    && rm -rf /var/lib/apt/lists/*
# The Debian package's own user; its uid is picked at install time.
# hadolint ignore=DL3066
USER kamailio
ENTRYPOINT ["kamailio", "-DD", "-E", "-f", "/etc/kamailio/kamailio.cfg", "-Y", "/tmp"]
