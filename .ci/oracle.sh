#!/usr/bin/env bash
# CI: the real-kernel oracle.  Installs QEMU (Debian: qemu-system-x86) and
# vmlinux-to-elf, fetches Debian's 6.1 kernel into a cache kept between runs
# on the same machine (~/.cache/emu-oracle, or $EMU_ORACLE_CACHE),
# and runs two oracle comparisons.  Run it with emu installed in the active
# Python environment (e.g. after .ci/run's "pip install ."); it exits non-zero
# when a comparison is not identical.
set -euo pipefail
cd "$(dirname "$0")/.."
export EMU_ORACLE_CACHE="${EMU_ORACLE_CACHE:-$HOME/.cache/emu-oracle}"
mkdir -p "$EMU_ORACLE_CACHE"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
need_apt=""
command -v qemu-system-x86_64 >/dev/null || need_apt="$need_apt qemu-system-x86"
command -v dpkg >/dev/null && command -v apt-get >/dev/null || { echo "oracle: needs a Debian/Ubuntu host (apt-get, dpkg)" >&2; exit 2; }
apt_update() {
    # a mirror in the middle of a sync (or a foreign-arch index) must not stop CI:
    # what is needed may still install from the lists already there
    $SUDO apt-get update -q >/dev/null 2>&1 || echo "oracle: apt-get update reported errors; going on" >&2
}
if [ -n "$need_apt" ]; then
    apt_update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need_apt >/dev/null
fi
command -v kallsyms-finder >/dev/null || python -m pip install -q vmlinux-to-elf

# the kernel: from the cache; when not there yet, fetch (refreshing the package lists once if needed)
emu oracle fetch || { apt_update; emu oracle fetch; }
# two comparisons: the firmware map at 512 MiB (2M pages) and 6 GiB with GB pages
emu oracle run --mem 512M --timeout 300
emu oracle run --mem 6G --cpu qemu64,+pdpe1gb --timeout 300
