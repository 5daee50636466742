# cpscale's container image: `make image` (or docker build -t cpscale .).
#
# Two stages. The first builds with warnings as errors and runs the test
# suites that need nothing but the binary; a failing test fails the build.
# The second holds only the binary and the shared libraries it loads, and
# runs as an unprivileged user (65532, as the Deployment's securityContext
# expects).
#
# Both stages use the same Debian release, so the libraries the binary was
# linked against are the ones it finds at run time. For a production
# registry, pin the base by digest (debian:bookworm-slim@sha256:...).

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- build -----------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build

# The same packages as `.ci/install-deps build`.
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libjansson-dev libyaml-dev libev-dev libcurl4-gnutls-dev libmicrohttpd-dev; \
    rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

RUN set -eux; \
    cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCPS_WERROR=ON; \
    cmake --build /build -j "$(nproc)"

# The unit and golden suites. Left out: the integration suites (they start
# Prometheus and fakes, which this stage does not install) and the manifests
# suite (it needs kubectl; it checks this Dockerfile from outside instead).
RUN set -eux; \
    cd /build; \
    ctest --output-on-failure -j "$(nproc)" -LE integration -E '^golden/manifests$'

# A stripped binary in /out/bin; the debug info stays in the build stage.
RUN cmake --install /build --prefix /out --strip

# ---- run -------------------------------------------------------------------
FROM ${DEBIAN_IMAGE}

# Only the shared libraries cpscale loads (the -dev packages' runtime halves)
# and the CA bundle for TLS to Prometheus. No compiler, no package sources.
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libjansson4 libyaml-0-2 libev4 libcurl3-gnutls libmicrohttpd12 ca-certificates; \
    rm -rf /var/lib/apt/lists/*

COPY --from=build /out/bin/cpscale /usr/local/bin/cpscale

# Fail the build here, not in the cluster, if a library is missing.
RUN set -eux; \
    if ldd /usr/local/bin/cpscale | grep 'not found'; then exit 1; fi; \
    /usr/local/bin/cpscale --version

LABEL org.opencontainers.image.title="cpscale" \
      org.opencontainers.image.description="Cost-aware horizontal autoscaler for Kubernetes"

# /metrics, /healthz, /readyz (the config's `listen`).
EXPOSE 8080

# Not root, and numeric so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532

ENTRYPOINT ["/usr/local/bin/cpscale"]
CMD ["run", "--config", "/etc/cpscale/config.yaml"]
