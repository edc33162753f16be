#!/usr/bin/env bash
# Resolves the tags of the Dockerfile's base images (ARG GO_IMAGE and
# RUNTIME_IMAGE) to the digests the registry serves now and rewrites the
# Dockerfile with them: run it where a registry is reachable, review the
# diff, commit. It needs `crane` (go install
# github.com/google/go-containerregistry/cmd/crane@latest) or docker
# with buildx.
#   scripts/pin-base-images.sh           rewrite the digests
#   scripts/pin-base-images.sh --check   exit 1 when a pinned digest is not the tag's current one
set -euo pipefail
cd "$(dirname "$0")/.."
check=false
[ "${1:-}" = --check ] && check=true

resolve() {
	if command -v crane >/dev/null 2>&1; then
		crane digest "$1"
	elif command -v docker >/dev/null 2>&1; then
		docker buildx imagetools inspect --format '{{json .Manifest.Digest}}' "$1" | tr -d '"'
	else
		echo "pin-base-images: need crane or docker buildx to reach the registry" >&2
		return 1
	fi
}

status=0
for arg in GO_IMAGE RUNTIME_IMAGE; do
	line=$(grep -E "^ARG ${arg}=" Dockerfile)
	ref=${line#ARG ${arg}=}
	tag=${ref%@*}
	pinned=""
	[ "$tag" != "$ref" ] && pinned=${ref#*@}
	current=$(resolve "$tag")
	if [ "$pinned" = "$current" ]; then
		echo "$arg: $tag@$current (current)"
		continue
	fi
	if $check; then
		echo "$arg: pinned ${pinned:-nothing}, but $tag is now $current" >&2
		status=1
		continue
	fi
	sed -i "s|^ARG ${arg}=.*|ARG ${arg}=${tag}@${current}|" Dockerfile
	echo "$arg: $tag@$current (was ${pinned:-unpinned})"
done
exit $status
