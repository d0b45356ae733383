# One image for the whole fleet: the six services plus provider-sim (staging / load tests only).
# There is no ENTRYPOINT: each Kubernetes manifest picks its binary with `command:`, e.g.
#   command: ["pushfleet-api", "migrate"]      (pre-deploy Job)
#   command: ["pushfleet-email-sender"]        (Deployment)
#
#   docker build -t ghcr.io/pushfleet/pushfleet:dev .

############################ builder ############################
FROM rust:1-bookworm AS builder
WORKDIR /src

# Migrations are embedded at compile time (sqlx::migrate!), so the runtime image needs no
# files besides the binaries.
COPY . .

# Plain RUN (no BuildKit cache mounts) so the file also builds with the legacy builder;
# with BuildKit, `--mount=type=cache` on the registry is an easy speed-up.
RUN cargo build --release --locked \
        -p pushfleet-api \
        -p pushfleet-scheduler \
        -p pushfleet-evaluator \
        -p pushfleet-email-sender \
        -p pushfleet-teams-sender \
        -p pushfleet-sms-sender \
        -p pushfleet-loadtest \
        --bins \
 && mkdir -p /out \
 && cp target/release/pushfleet-api \
       target/release/pushfleet-scheduler \
       target/release/pushfleet-evaluator \
       target/release/pushfleet-email-sender \
       target/release/pushfleet-teams-sender \
       target/release/pushfleet-sms-sender \
       target/release/provider-sim \
       /out/

############################ runtime ############################
FROM debian:bookworm-slim AS runtime

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 pushfleet \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin pushfleet

COPY --from=builder /out/ /usr/local/bin/

# Numeric so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /

# Documentation only: API_ADDR / ADMIN_ADDR decide the real ports (the manifests use
# 0.0.0.0:8080 for the API and 0.0.0.0:9090 for every admin endpoint).
EXPOSE 8080 9090

# Default for a bare `docker run`; the manifests always set their own command.
CMD ["pushfleet-api", "serve"]
