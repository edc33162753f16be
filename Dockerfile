# syntax=docker/dockerfile:1
# Multi-stage build: a static Parley binary on a distroless, non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The same build command as CI and the Makefile.
RUN VERSION=${VERSION} ./scripts/build.sh /out/parley

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/parley /usr/local/bin/parley
# The embedded SQLite database lives on a volume; the root filesystem can be read-only.
ENV PARLEY_DB=/var/lib/parley/parley.db
VOLUME ["/var/lib/parley"]
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/parley"]
CMD ["chat"]
