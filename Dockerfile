# syntax=docker/dockerfile:1
# Parley: a static binary on a distroless, non-root base.
#
# Base images are pinned by digest, so a rebuild of the same commit uses
# the same toolchain and the same runtime files. The digests were read
# from public Dockerfiles that pin these tags; they could not be
# re-resolved where this file was written (no registry access).
# scripts/pin-base-images.sh resolves the tags against the registry and
# rewrites them; scripts/check-image.sh (CI) refuses a FROM without one.
ARG GO_IMAGE=golang:1.26.8-bookworm@sha256:dc9ad6c05acc7a88e5b71bde60a5fe3bd4b9f0db209011711b464107438a8107
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The one build command of CI, the Makefile and test.sh: the image holds
# the binary scripts/build.sh makes (scripts/check-image.sh compares them).
RUN VERSION=${VERSION} ./scripts/build.sh /out/parley
# The data folder, owned by the image's non-root user: a new volume
# mounted here starts with this ownership, so SQLite can create its files.
RUN mkdir -p /out/data && chmod 0700 /out/data

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/parley /usr/local/bin/parley
COPY --from=build --chown=65532:65532 /out/data /var/lib/parley
# The embedded SQLite database lives on the volume; the root filesystem
# can be read-only. The HTTP server (health, readiness, metrics, webhooks)
# listens on all interfaces, so a published port reaches it; a --config
# file's own database and listen win over these.
ENV PARLEY_DB=/var/lib/parley/parley.db \
    PARLEY_LISTEN=0.0.0.0:8080
VOLUME ["/var/lib/parley"]
EXPOSE 8080
USER 65532:65532
# Distroless has no curl or wget: the binary checks its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["parley", "healthcheck"]
ENTRYPOINT ["parley"]
# The service. Mount a configuration and pass it:
#   docker run -v ./parley.yaml:/etc/parley/config.yaml:ro ... serve --config /etc/parley/config.yaml
# or set PARLEY_CONFIG=/etc/parley/config.yaml.
CMD ["serve"]
