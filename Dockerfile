# syntax=docker/dockerfile:1

# ---- build -----------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src

# Dependencies get their own layer, rebuilt only when the manifests change:
# stub sources let cargo compile every dependency without the real code.
# scripts/docker-stubs writes one stub per target the manifests declare, read
# from the manifests themselves (the workspace members' too), so a new target
# needs no change here; a new workspace member needs its Cargo.toml copied.
# Only the gateway (-p siphon) is built: the load generator and the test
# peers stay out of the image.
COPY Cargo.toml Cargo.lock scripts/docker-stubs ./
COPY crates/load/Cargo.toml crates/load/
COPY crates/testkit/Cargo.toml crates/testkit/
COPY crates/doubles/Cargo.toml crates/doubles/
RUN sh docker-stubs create \
    && cargo build --release --locked -p siphon \
    && rm -rf src benches tests examples crates/*/src docker-stubs

COPY . .
# Make the real sources newer than the stub artifacts so cargo rebuilds them.
RUN sh scripts/docker-stubs touch \
    && cargo build --release --locked -p siphon \
    && cp target/release/siphon /usr/local/bin/siphon

# ---- runtime ---------------------------------------------------------------
FROM debian:bookworm-slim

# The host's CA store is what TLS trunks and registrars are verified against
# (sip.tls_ca replaces it); bookworm pins the version, so DL3008 is moot.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 siphon \
    && useradd --system --uid 10001 --gid siphon --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin siphon

COPY --from=builder /usr/local/bin/siphon /usr/local/bin/siphon
# Binds 0.0.0.0 and requires token auth: run with -e SIPHON_AUTH_SECRET=...
# and SIPHON_{SIP,WEBRTC,RTP}_PUBLIC_IP set to the host's address (required;
# see docker-compose.yml).
COPY config/docker.toml /etc/siphon/siphon.toml
# Lets other subcommands (the health check) find the same config file.
ENV SIPHON_CONFIG=/etc/siphon/siphon.toml

# Numeric, so that runtimes enforcing non-root can verify it without /etc/passwd.
USER 10001:10001

# 8080/tcp: web phone, /ws, /metrics, /healthz.
# 5060/udp+tcp: SIP.
# 10000-10001/udp: WebRTC, one port per relay loop (webrtc.port + i for
#   media.workers = 2 in docker.toml); publish more if you raise workers.
# 20000-29999/udp: SIP-side RTP/RTCP pool (rtp.port_min..rtp.port_max).
#   Publishing 10,000 ports through docker-proxy is slow: prefer
#   --network host, or narrow the range with SIPHON_RTP_PORT_MIN/MAX.
EXPOSE 8080/tcp 5060/udp 5060/tcp 10000-10001/udp 20000-29999/udp

# The slim image has no curl; the binary probes its own /healthz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["siphon", "healthcheck"]

ENTRYPOINT ["siphon", "--config", "/etc/siphon/siphon.toml"]
