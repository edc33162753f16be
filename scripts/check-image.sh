#!/usr/bin/env bash
# Checks the container image definition. Always (no Docker needed): the
# Dockerfile pins every base image by digest, runs as the non-root user,
# defaults to `parley serve`, has a HEALTHCHECK with `parley healthcheck`,
# hands the data volume to the non-root user, and builds the binary only
# with scripts/build.sh, the command CI and the Makefile use. Where a
# Docker daemon answers it also builds the image, compares the binary's
# build settings (go version -m) with scripts/build.sh's, and runs the
# image until its HEALTHCHECK reports healthy (which needs the volume to be
# writable by the non-root user).
#   scripts/check-image.sh [PARLEY_BIN]   (default bin/parley, built by scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-bin/parley}"
fail() { echo "check-image: $*" >&2; exit 1; }

df="${DOCKERFILE:-Dockerfile}"
# Every FROM, with ARG defaults expanded, names a digest.
declare -A args=()
while IFS= read -r line; do
	if [[ $line =~ ^ARG[[:space:]]+([A-Z_]+)=(.*)$ ]]; then
		args[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
	fi
done < <(grep -E '^ARG [A-Z_]+=' "$df")
stages=0
while read -r _ ref rest; do
	stages=$((stages + 1))
	if [[ $ref =~ ^\$\{([A-Z_]+)\}$ ]]; then
		ref=${args[${BASH_REMATCH[1]}]:-}
	fi
	[[ $ref =~ @sha256:[0-9a-f]{64}$ ]] || fail "FROM $ref is not pinned by digest (scripts/pin-base-images.sh pins it)"
done < <(grep -E '^FROM ' "$df")
[ "$stages" -ge 2 ] || fail "want a build stage and a runtime stage, found $stages FROM lines"

grep -qxF 'ENTRYPOINT ["parley"]' "$df" || fail 'want ENTRYPOINT ["parley"]'
grep -qxF 'CMD ["serve"]' "$df" || fail 'want CMD ["serve"]: the image is the service, not the console'
grep -qE '^USER (65532|nonroot)(:(65532|nonroot))?$' "$df" || fail "want USER 65532:65532 (distroless nonroot)"
grep -A1 -E '^HEALTHCHECK ' "$df" | grep -qF 'CMD ["parley", "healthcheck"]' || fail 'want HEALTHCHECK ... CMD ["parley", "healthcheck"]'
grep -qE '^VOLUME \["/var/lib/parley"\]$' "$df" || fail 'want VOLUME ["/var/lib/parley"]'
grep -qE '^COPY --from=build --chown=65532:65532 [^ ]+ /var/lib/parley$' "$df" ||
	fail "the volume folder /var/lib/parley must come from the build stage owned by 65532, or the non-root user cannot write the database"
# One build command: scripts/build.sh, never a go build of its own.
grep -qE '^RUN VERSION=\$\{VERSION\} \./scripts/build\.sh /out/parley$' "$df" || fail "the binary must be built by ./scripts/build.sh"
if grep -E '^RUN ' "$df" | grep -qE 'go (build|install)'; then
	fail "the Dockerfile runs go build itself; use scripts/build.sh so the image holds what CI tests"
fi
# The commands the image relies on exist in this tree's binary.
if [ -x "$bin" ]; then
	"$bin" healthcheck -h >/dev/null 2>&1 || fail "$bin has no healthcheck command"
	"$bin" serve -h >/dev/null 2>&1 || fail "$bin has no serve command"
fi
echo "check-image: Dockerfile ok (digest-pinned bases, non-root, serve, HEALTHCHECK, volume ownership, scripts/build.sh)"

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
	echo "check-image: no Docker daemon here; the image was not built (the Dockerfile checks above ran)"
	exit 0
fi

version="check-$(git rev-parse --short HEAD 2>/dev/null || echo local)"
tag="parley:$version"
echo "check-image: docker build -t $tag"
docker build -q --build-arg VERSION="$version" -t "$tag" . >/dev/null
work=$(mktemp -d)
cid=""
cleanup() {
	[ -n "$cid" ] && docker rm -f "$cid" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
cid=$(docker create "$tag")
docker cp "$cid:/usr/local/bin/parley" "$work/parley-image" >/dev/null
docker rm "$cid" >/dev/null
cid=""
VERSION="$version" ./scripts/build.sh "$work/parley-local"
settings() { go version -m "$1" | awk '$1 == "build" && $2 !~ /^vcs/ {print $2}' | sort; }
if ! diff <(settings "$work/parley-image") <(settings "$work/parley-local"); then
	fail "the image's binary was built with other settings than scripts/build.sh (diff above: image < > local)"
fi
"$work/parley-local" version | grep -qF "$version" || fail "the local build does not report $version"
docker run --rm "$tag" version | grep -qF "$version" || fail "the image does not report $version"

cid=$(docker run -d "$tag")
for _ in $(seq 1 60); do
	state=$(docker inspect -f '{{.State.Health.Status}}' "$cid")
	[ "$state" = healthy ] && break
	[ "$state" = unhealthy ] && break
	sleep 1
done
[ "$state" = healthy ] || { docker logs "$cid" >&2; fail "the container is $state, not healthy"; }
[ "$(docker inspect -f '{{.Config.User}}' "$tag")" = "65532:65532" ] || fail "the image does not run as 65532"
echo "check-image: image built, same build settings as scripts/build.sh, healthy as 65532"
