#!/usr/bin/env bash
# Installs what unicrm needs to build and test on Debian 12 or 13, as root.
# Idempotent: a machine that already has everything is left untouched.
#
#   scripts/setup.sh          build and test dependencies
#   scripts/setup.sh --bench  the same, plus wrk and nginx-light for bench/
set -euo pipefail

want_bench=0
[ "${1:-}" = "--bench" ] && want_bench=1

log() { printf 'setup: %s\n' "$*" >&2; }

pkgs=(build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev libyajl-dev
      libmimalloc-dev libcmocka-dev valgrind ca-certificates curl clang libclang-rt-14-dev
      util-linux)
[ "$want_bench" = 1 ] && pkgs+=(wrk nginx-light)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

updated=0
apt_update_once() {
  [ "$updated" = 1 ] && return 0
  as_root apt-get update -qq
  updated=1
}

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_update_once
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# llhttp: we need >= 9.2.1 (CVE-2024-27982 and earlier smuggling fixes). Debian 13 packages it
# as libllhttp-dev; Debian 12 does not, so on Debian 12 the two Debian 13 packages (which need
# nothing but libc) are fetched with a private apt configuration. The machine's own apt
# sources are never changed.
have_llhttp() { pkg-config --atleast-version=9.2.1 libllhttp 2>/dev/null; }

if ! have_llhttp; then
  apt_update_once
  cand=$(apt-cache policy libllhttp-dev 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -n "$cand" ] && [ "$cand" != "(none)" ] && dpkg --compare-versions "$cand" ge 9.2.1; then
    log "installing libllhttp-dev $cand"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libllhttp-dev >/dev/null
  else
    priv=$(mktemp -d)
    trap 'rm -rf "$priv"' EXIT
    mkdir -p "$priv/lists/partial" "$priv/cache/archives/partial" "$priv/debs"
    # apt downloads as the unprivileged _apt user, which must be able to write here.
    chmod -R 755 "$priv"
    chown -R _apt "$priv/lists" "$priv/cache" "$priv/debs" 2>/dev/null || true

    # Reuse the mirror this machine already trusts, only with the Debian 13 suite.
    uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
      uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++)
               if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || { log "no Debian mirror found in the apt sources"; exit 1; }

    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" \
      >"$priv/sources.list"
    aptopt=(-o "Dir::Etc::sourcelist=$priv/sources.list" -o "Dir::Etc::sourceparts=-"
            -o "Dir::State::Lists=$priv/lists" -o "Dir::Cache=$priv/cache"
            -o "APT::Get::List-Cleanup=0")
    log "fetching libllhttp-dev and libllhttp9.2 from Debian 13 (private apt configuration)"
    as_root apt-get "${aptopt[@]}" update -qq
    (cd "$priv/debs" && as_root apt-get "${aptopt[@]}" download libllhttp-dev libllhttp9.2 -qq)
    as_root dpkg -i "$priv"/debs/*.deb >/dev/null
  fi
  have_llhttp || { log "llhttp >= 9.2.1 is still missing"; exit 1; }
fi

log "ok: llhttp $(pkg-config --modversion libllhttp), $(curl-config --version 2>/dev/null || true)"
