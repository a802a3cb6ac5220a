#!/usr/bin/env bash
# CI: the real-kernel oracle.  One comparison per Debian kernel release -- 5.10 (bullseye),
# 6.1 (bookworm), 6.12 (trixie), amd64, QEMU's own e820 with 512 MiB -- a few seconds of
# boot each -- then GB pages at 6 GiB and two bottom-up layouts on the newest, with emu's inputs derived from the artefacts (--inputs artefacts: the console
# log, the kernel's config and System.map, the CPU as --cpu text); each must be identical
# with no assumption left.  The kernels are cached between runs on the same machine (~/.cache/emu-oracle,
# or $EMU_ORACLE_CACHE): once fetched, no network is needed.  `emu oracle fetch` runs apt
# with a sources list, lists and package cache of its own in that folder (never the
# system's).  Needs the installed `emu` command (e.g. after .ci/run's "pip install .");
# installs QEMU (Debian: qemu-system-x86) and vmlinux-to-elf when missing.  Exits non-zero
# when a comparison is not identical or a kernel cannot be had.
set -euo pipefail
cd "$(dirname "$0")/.."
export EMU_ORACLE_CACHE="${EMU_ORACLE_CACHE:-$HOME/.cache/emu-oracle}"
mkdir -p "$EMU_ORACLE_CACHE"
RELEASES="${EMU_ORACLE_RELEASES:-5.10 6.1 6.12}"

command -v emu >/dev/null || { echo "oracle: the emu command is not installed (pip install .)" >&2; exit 2; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if ! command -v qemu-system-x86_64 >/dev/null; then
    command -v apt-get >/dev/null || { echo "oracle: needs qemu-system-x86_64 (or a Debian/Ubuntu host to install it)" >&2; exit 2; }
    # a mirror in the middle of a sync must not stop CI: what is needed may still install
    $SUDO apt-get update -q >/dev/null 2>&1 || echo "oracle: apt-get update reported errors; going on" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-system-x86 >/dev/null
fi
command -v dpkg >/dev/null || { echo "oracle: needs dpkg (Debian/Ubuntu host) to unpack the kernels" >&2; exit 2; }
# kallsyms-finder, next to the emu command's Python
EMU_PY="$(head -1 "$(command -v emu)" | sed -n 's/^#!//p')"
command -v kallsyms-finder >/dev/null || [ -x "$(dirname "${EMU_PY:-python}")/kallsyms-finder" ] \
    || "${EMU_PY:-python}" -m pip install -q vmlinux-to-elf

t0=$(date +%s)
for rel in $RELEASES; do
    # from the cache when there; else apt (own lists, updated once); a failing apt is not
    # fatal while the cache holds the package
    emu oracle fetch --release "$rel" --flavour amd64 >/dev/null \
        || emu oracle fetch --release "$rel" --flavour amd64 --refresh >/dev/null
done
# emu's inputs from the artefacts a user has (the console log with memblock=debug, the
# package's config and System.map, the CPU as --cpu text): identical AND nothing assumed
check() {  # check JSON-FILE: one line per comparison; non-zero unless identical with no assumption
    "${EMU_PY:-python3}" - "$1" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
bad = 0
for c in doc["comparisons"]:
    a = [x["text"] for x in c["assumptions"]]
    print(f"oracle: {c.get('release', '-')} {c.get('flavour', '-')} {c['layout']}: profile {c['profile']}, "
          f"inputs {c['inputs']}, {'identical' if c['identical'] else 'DIFFERENT'}, {len(a)} assumption(s), "
          f"boot {c['boot_seconds']} s")
    for t in a:
        print(f"  assumed: {t}")
    for d in c["differences"][:10]:
        print(f"  {d}")
    bad += (not c["identical"]) or bool(a)
sys.exit(1 if bad else 0)
PY
}
out="$(mktemp)"; trap 'rm -f "$out"' EXIT
n=0; rc=0
for rel in $RELEASES; do
    emu oracle run --release "$rel" --flavour amd64 --mem 512M --inputs artefacts --timeout 300 --json > "$out" || true
    check "$out" || rc=1; n=$((n + 1))
done
# and one with GB pages above 4 GiB (1G leaves, split around the PCI hole), on the newest release asked
LAST="${RELEASES##* }"
emu oracle run --release "$LAST" --flavour amd64 --mem 6G --cpu qemu64,+pdpe1gb --inputs artefacts --timeout 300 \
    --json > "$out" || true
check "$out" || rc=1; n=$((n + 1))
# and memblock bottom-up (movable_node) with an initrd, and F8's map (a page table taken below
# the kernel before it is mapped): the search direction, _end from the System.map, the initrd
emu oracle matrix --release "$LAST" --flavour amd64 --only 3G-movable-node-initrd,16G-movable-node-f8 \
    --timeout 300 --json > "$out" || true
check "$out" || rc=1; n=$((n + 2))
echo "oracle: $n comparisons in $(( $(date +%s) - t0 )) s"
exit $rc
