#!/usr/bin/env bash
# The Helm chart's validation tools, built once from the Go module proxy into
# ~/.cache/gnlc-notify/tools/ (every checkout of this user shares them; the tests call this,
# and a second call finds the built tool at once):
#
#   deploy/tools.sh helm          print the path of helm, building it first if needed
#   deploy/tools.sh kubeconform   the same for kubeconform
#   deploy/tools.sh promtool      Prometheus's promtool (metrics and rules checks): the one on
#                                 PATH, else taken once from Debian's `prometheus` package
#                                 (downloaded with apt-get and unpacked; nothing installed,
#                                 no server started)
#
# helm and kubeconform need Go (1.24 or newer). A build is bounded by TOOLS_BUILD_TIMEOUT seconds (1500); a tool
# that cannot be built is an error with the build's log, never a silent skip.
# GNLC_TOOLS_DIR puts the tools elsewhere (default: $GNLC_CACHE_DIR/tools, where
# GNLC_CACHE_DIR is $XDG_CACHE_HOME/gnlc-notify or ~/.cache/gnlc-notify).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${GNLC_TOOLS_DIR:-${GNLC_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-$root}/.cache}/gnlc-notify}/tools}

helm_version=v3.19.0
kubeconform_version=v0.6.7

say() { printf 'tools: %s\n' "$*" >&2; }

find_promtool() {
  if command -v promtool >/dev/null; then
    command -v promtool
    return 0
  fi
  local version
  version=$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [[ -z $version || $version == "(none)" ]] && [[ $(id -u) -eq 0 ]]; then
    say "updating Debian's package lists to find prometheus (once) ..."
    flock "${TMPDIR:-/tmp}/gnlc-notify-apt.lock" apt-get update -qq >&2 || true
    version=$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')
  fi
  if [[ -z $version || $version == "(none)" ]]; then
    say "promtool is not on PATH and Debian's prometheus package is not available (apt-get install prometheus, or put promtool on PATH)"
    exit 1
  fi
  local dir=$tools/promtool-${version//[^A-Za-z0-9.+-]/_}
  if [[ ! -x $dir/promtool ]]; then
    mkdir -p "$tools"
    exec 9>"$tools/.promtool.lock"
    flock 9
    if [[ ! -x $dir/promtool ]]; then
      say "taking promtool from Debian's prometheus $version (once) ..."
      rm -rf "$dir.partial"
      mkdir -p "$dir.partial"
      # apt's sandbox user may not write here: download as the caller, quietly
      if ! (cd "$dir.partial" && apt-get download -qq -o APT::Sandbox::User=root "prometheus=$version" >&2); then
        say "downloading Debian's prometheus $version failed"
        exit 1
      fi
      dpkg-deb --fsys-tarfile "$dir.partial"/prometheus_*.deb | tar -x -C "$dir.partial" ./usr/bin/promtool
      mv "$dir.partial/usr/bin/promtool" "$dir.partial/promtool"
      rm -rf "$dir.partial/usr" "$dir.partial"/prometheus_*.deb
      rm -rf "$dir"
      mv "$dir.partial" "$dir"
    fi
  fi
  printf '%s\n' "$dir/promtool"
}

case ${1:-} in
  promtool) find_promtool; exit 0 ;;
  helm)
    module=helm.sh/helm/v3/cmd/helm version=$helm_version
    # what the release builds stamp in: helm's version and the Kubernetes version that
    # `helm template` assumes (otherwise 1.20)
    ldflags="-X helm.sh/helm/v3/internal/version.version=$helm_version"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=34"
    ;;
  kubeconform)
    module=github.com/yannh/kubeconform/cmd/kubeconform version=$kubeconform_version
    ldflags="-X main.version=$kubeconform_version"
    ;;
  *) say "usage: deploy/tools.sh helm|kubeconform|promtool"; exit 2 ;;
esac
name=$1
dir=$tools/$name-$version
bin=$dir/$name

if [[ ! -x $bin ]]; then
  command -v go >/dev/null || { say "Go is needed to build $name $version (go install $module)"; exit 1; }
  mkdir -p "$tools"
  exec 9>"$tools/.$name.lock"
  flock 9 # one build at a time; a second caller waits, then finds the tool
  if [[ ! -x $bin ]]; then
    say "building $name $version from the Go module proxy (once; helm takes a few minutes) ..."
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial"
    log=$tools/$name-$version.build.log
    if ! GOBIN=$dir.partial GOFLAGS="-mod=mod -buildvcs=false" \
      timeout "${TOOLS_BUILD_TIMEOUT:-1500}" go install -ldflags "$ldflags" "$module@$version" >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      say "building $name $version failed (or took longer than ${TOOLS_BUILD_TIMEOUT:-1500} s); the log is $log"
      exit 1
    fi
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
  fi
fi
printf '%s\n' "$bin"
