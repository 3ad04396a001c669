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
# librdkafka links the system's OpenSSL, Cyrus SASL, libcurl and zstd
# (docs/operations/kafka.md says why); the C/C++ toolchain is in the base image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev libssl-dev libsasl2-dev \
      libcurl4-openssl-dev libzstd-dev zlib1g-dev pkg-config \
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
# ca-certificates: the trust store librdkafka's TLS reads (partner HTTPS
# calls use the Mozilla roots compiled into the binary). The libraries
# librdkafka links: OpenSSL, Cyrus SASL with its SCRAM/PLAIN and Kerberos
# (GSSAPI) modules, libcurl (OAUTHBEARER OIDC tokens), zstd.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 libsasl2-2 \
      libsasl2-modules libsasl2-modules-gssapi-mit libcurl4 libzstd1 zlib1g \
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
