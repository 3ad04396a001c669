# syntax=docker/dockerfile:1
#
# postback container image.
#
#   docker build -t postback .
#   docker run --rm postback check-config /etc/postback/postback.toml
#
# The cache mounts keep the cargo registry and the target directory between
# builds (rocksdb and librdkafka take minutes to compile); they need BuildKit,
# the default builder of current Docker releases.

FROM rust:1-bookworm AS builder
# libclang: rocksdb's bindings are generated with bindgen at build time.
# The C/C++ toolchain and zlib headers librdkafka needs are in the base image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY schemas schemas
# Not built here, but Cargo.toml declares these targets ([[bench]] hot_path,
# [[test]] it, examples/*.rs) and refuses a manifest whose targets are missing.
COPY benches benches
COPY examples examples
COPY tests tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin postback \
 && cp target/release/postback /usr/local/bin/postback

FROM debian:bookworm-slim
# ca-certificates: a system trust store for anything that looks for one.
# Partner HTTPS calls themselves use the Mozilla roots compiled into the
# binary (reqwest with rustls and webpki-roots).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 postback \
 && useradd --system --uid 10001 --gid postback --home-dir /var/lib/postback \
      --no-create-home --shell /usr/sbin/nologin postback \
 && mkdir -p /var/lib/postback /etc/postback \
 && chown postback:postback /var/lib/postback
COPY --from=builder /usr/local/bin/postback /usr/local/bin/postback
# A working example; deployments mount their own config over it.
COPY examples/postback.toml /etc/postback/postback.toml
USER 10001:10001
# The example's relative state_dir ("./state") lands in the writable home.
WORKDIR /var/lib/postback
ENV RUST_LOG=info
# admin: /metrics, /healthz, /readyz
EXPOSE 9464
ENTRYPOINT ["postback"]
CMD ["run", "/etc/postback/postback.toml"]
