# syntax=docker/dockerfile:1
#
# apiwarden as a container image: a static binary on a distroless base,
# running as an unprivileged user, with its data in the /data volume.
#
#   docker build -t apiwarden:1.0.0 --build-arg VERSION=1.0.0 .
#
# docs/docker.md shows how to run it; docs/deploy-kubernetes.md how to put
# it next to an app in a pod.

# go.mod asks for Go 1.26.8 or later and the image does not fetch a newer
# toolchain (GOTOOLCHAIN=local): pull a current 1.26 image.
ARG GO_VERSION=1.26

# The build runs on the builder's own platform and cross-compiles, so a
# multi-platform build (docker buildx build --platform linux/amd64,linux/arm64)
# needs no emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
# CGO off: a static binary that runs on a base image without a C library.
# -trimpath keeps build paths out of it, -s -w the symbol tables;
# VERSION is what `apiwarden version` and /healthz report.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/apiwarden . \
 && mkdir -m 0700 /out/data

# distroless/static: CA certificates (for https upstreams, webhooks, Slack,
# SMTP) and /etc/passwd, no shell and no package manager. Time zones are
# compiled into the binary.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/apiwarden /usr/local/bin/apiwarden
COPY deploy/docker/apiwarden.toml /etc/apiwarden/apiwarden.toml
# The data directory (mode 0700) must belong to the user apiwarden runs as:
# a new named volume takes its owner and mode from the image.
COPY --from=build --chown=65532:65532 /out/data /data
# 65532 is distroless's "nonroot". Numeric, so that Kubernetes'
# runAsNonRoot can check it.
USER 65532:65532
VOLUME /data
# 8080: server.listen (the proxy, or /v1/*). 8081: server.admin_listen
# (admin API, dashboard, /metrics, /healthz, /readyz, and /v1/* in proxy
# mode): publish it only where operators can reach it.
EXPOSE 8080 8081
# SIGTERM drains in-flight requests for up to server.shutdown_timeout (15s
# by default): stop with a longer timeout than Docker's 10s,
# `docker stop -t 30` or `docker run --stop-timeout 30`.
STOPSIGNAL SIGTERM
# There is no curl in the image: the binary asks its own /readyz, on the
# admin_listen port of the same configuration file serve reads.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/apiwarden", "healthcheck", "-config", "/etc/apiwarden/apiwarden.toml"]
ENTRYPOINT ["/usr/local/bin/apiwarden"]
CMD ["serve", "-config", "/etc/apiwarden/apiwarden.toml"]
