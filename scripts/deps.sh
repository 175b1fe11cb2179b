#!/usr/bin/env bash
# Installs the Debian packages silentmon's build, tests and demo need.
# Safe to run again: it does nothing when everything is there. Retries while
# another apt or dpkg holds the lock.
set -euo pipefail

PACKAGES=(
  tshark tcpreplay tcpdump ethtool iproute2   # capture tests and the NIC test
  libbcg729-dev                               # G.729 decoding (cgo)
  libspandsp-dev libspandsp2                  # G.722 decoding and the generator's encoder (cgo)
  libopus-dev libopus0                        # Opus decoding and the generator's encoder (cgo)
  libspeexdsp-dev libspeexdsp1                # the resampler of wideband sessions and the sound card (cgo)
  ffmpeg                                      # the independent G.722 and Opus decoders the codec tests compare with
  portaudio19-dev libasound2-plugins alsa-utils  # PortAudio playout and its test
  sip-tester baresip                          # real SIP user agents in the SIP tests
  chromium                                    # the browser the console tests drive (chromedp)
  sox openssl pkg-config valgrind gcc bc curl procps
  adduser man-db strace systemd               # the packaging test: the silentmon user, man -w, system calls, systemd-analyze verify
)

# promtool (the metrics test's `promtool check metrics`) comes from Debian's
# prometheus package, which would start a Prometheus server if installed:
# only its promtool is taken, into /usr/local/bin.
install_promtool() {
  if command -v promtool >/dev/null || [[ -x /usr/local/bin/promtool ]]; then return 0; fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: promtool is missing and installing it into /usr/local/bin needs root; the promtool test will skip" >&2
    return 0
  fi
  local tmp
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1) ||
     { apt-get update -qq >/dev/null 2>&1 && (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); }; then
    dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
    install -m 0755 "$tmp/usr/bin/promtool" /usr/local/bin/promtool
    echo "deps: installed /usr/local/bin/promtool (from Debian's prometheus package)"
  else
    echo "deps: could not download Debian's prometheus package for promtool; the promtool test will skip" >&2
  fi
  rm -rf "$tmp"
}
install_promtool

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "deps: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 2
  fi
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no, without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections 2>/dev/null || true

apt_retry() {
  local i
  for i in $(seq 1 30); do
    if $SUDO apt-get -o DPkg::Lock::Timeout=120 "$@"; then return 0; fi
    echo "deps: apt-get $1 failed (try $i), retrying in 10 s (the dpkg lock may be held)" >&2
    sleep 10
  done
  return 1
}
apt_retry update -qq
apt_retry install -y -qq --no-install-recommends "${missing[@]}"
