"""The CPU: as a user describes it (``--cpu``), and as a boot log shows it.

:func:`parse_cpu` turns a description into :class:`emu.machine.cpu.CpuFeatures` (what the
hardware offers; what the kernel makes of it, ``nogbpages``, ``nopti``, ``no5lvl``, is a
boot option, never a CPU feature).  Accepted forms (comma-separated, case-insensitive):

* a vendor and the features it has: ``intel,pse,pge,gbpages,nx,la57`` (bare names list the
  features exactly: the ones not named are absent);
* a vendor or model and changes: ``amd,-gbpages``, ``intel,+la57`` (``+``/``-`` change the
  model's defaults);
* QEMU's ``-cpu`` form: ``qemu64,+pdpe1gb,+la57``, ``qemu64,vendor=GenuineIntel,+pdpe1gb``,
  ``kvm64,pdpe1gb=on``.

Vendors: ``intel``, ``amd``, ``hygon``, ``centaur``, ``zhaoxin`` (or their CPUID strings
``GenuineIntel``...); alone they mean PSE, PGE, NX and 1 GiB pages, no LA57 (the
``CpuFeatures`` defaults).  QEMU models (``builtin_x86_defs`` of QEMU's target/i386/cpu.c):
``qemu64`` (AMD; PSE, PGE, NX; no pdpe1gb, no la57), ``kvm64`` (Intel; the same),
``qemu32``, ``kvm32`` (Intel; PSE, PGE; no NX).  ``host``/``max`` depend on the machine QEMU
runs on and are refused.  Feature names and aliases: ``pse``, ``pge``, ``gbpages``
(``pdpe1gb``, ``page1gb``, ``1gb``), ``nx`` (``xd``), ``la57``.

:class:`CpuFacts` is what a boot log shows of the CPU (see
:func:`emu.inputs.dmesg.parse_boot_log`), with :meth:`CpuFacts.resolve` filling the rest
from a description or the defaults and naming every feature it had to assume.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from emu.errors import EmuError
from emu.machine.cpu import CpuFeatures

__all__ = ["CpuError", "parse_cpu", "VENDORS", "FEATURES", "QEMU_MODELS", "CpuFacts", "vendor_from_text"]


class CpuError(EmuError):
    """A CPU description emu cannot read (one line naming the bad word)."""


#: vendor names -> the ``CpuFeatures.vendor`` value
VENDORS: Dict[str, str] = {
    "intel": "intel", "genuineintel": "intel", "amd": "amd", "authenticamd": "amd",
    "hygon": "hygon", "hygongenuine": "hygon", "centaur": "centaur", "centaurhauls": "centaur",
    "zhaoxin": "zhaoxin", "shanghai": "zhaoxin",
}
#: feature names and aliases -> ``CpuFeatures`` field
FEATURES: Dict[str, str] = {
    "pse": "pse", "pge": "pge", "gbpages": "gbpages", "pdpe1gb": "gbpages", "page1gb": "gbpages",
    "1gb": "gbpages", "nx": "nx", "xd": "nx", "la57": "la57",
}
_FIELDS = ("pse", "pge", "gbpages", "nx", "la57")
#: QEMU CPU models: vendor and the features of this list they have
QEMU_MODELS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "qemu64": ("amd", ("pse", "pge", "nx")),
    "kvm64": ("intel", ("pse", "pge", "nx")),
    "qemu32": ("intel", ("pse", "pge")),
    "kvm32": ("intel", ("pse", "pge")),
}
_UNKNOWABLE = ("host", "max", "base")
_ON = {"on", "true", "yes", "1"}
_OFF = {"off", "false", "no", "0"}


def _hint() -> str:
    return "features: %s; vendors: %s; models: %s" % (
        ", ".join(sorted(FEATURES)), ", ".join(sorted({v for v in VENDORS.values()})), ", ".join(sorted(QEMU_MODELS)))


def parse_cpu(desc: str) -> CpuFeatures:
    """A CPU description (see the module docstring) as :class:`CpuFeatures`; CpuError
    (one line naming the unknown word and the known ones) for anything else."""
    if not isinstance(desc, str) or not desc.strip():
        raise CpuError("empty CPU description (e.g. intel,pse,pge,gbpages,nx or qemu64,+pdpe1gb)")
    words = [w.strip() for w in desc.split(",")]
    if any(not w for w in words):
        raise CpuError("CPU description %r has an empty item" % desc[:80])
    vendor: Optional[str] = None
    base: Dict[str, bool] = {f: getattr(CpuFeatures(), f) for f in _FIELDS}
    exact: Dict[str, bool] = {}
    changes: Dict[str, bool] = {}
    for k, w in enumerate(words):
        lw = w.lower()
        if k == 0 and lw in QEMU_MODELS:
            vendor, model_feats = QEMU_MODELS[lw]
            base = {f: f in model_feats for f in _FIELDS}
            continue
        if k == 0 and lw in _UNKNOWABLE:
            raise CpuError("CPU model %r depends on the machine QEMU runs on; list its features "
                           "(e.g. intel,pse,pge,gbpages,nx)" % w)
        if lw.startswith("vendor="):
            v = VENDORS.get(lw[len("vendor="):])
            if v is None:
                raise CpuError("unknown CPU vendor %r in %r (vendors: %s)"
                               % (w[len("vendor="):], desc[:80], ", ".join(sorted(set(VENDORS.values())))))
            vendor = v
            continue
        if lw in VENDORS:
            if vendor is not None and k > 0:
                raise CpuError("CPU description %r names a second vendor %r" % (desc[:80], w))
            vendor = VENDORS[lw]
            continue
        sign: Optional[bool] = None
        name = lw
        if name[:1] in "+-":
            sign, name = name[0] == "+", name[1:]
        elif "=" in name:
            name, val = name.split("=", 1)
            if val in _ON:
                sign = True
            elif val in _OFF:
                sign = False
            else:
                raise CpuError("CPU feature %r: value %r is not on/off" % (name, val))
        f = FEATURES.get(name)
        if f is None:
            if k == 0:
                raise CpuError("unknown CPU vendor, model or feature %r in %r (%s)" % (w, desc[:80], _hint()))
            raise CpuError("unknown CPU feature %r in %r (%s)" % (w, desc[:80], _hint()))
        if sign is None:
            exact[f] = True
        else:
            changes[f] = sign
    feats = ({f: exact.get(f, False) for f in _FIELDS} if exact else dict(base))
    feats.update(changes)
    return CpuFeatures(vendor=vendor or "intel", **feats)


# ---------------------------------------------------------------------------
# what a log shows
# ---------------------------------------------------------------------------
_VENDOR_WORDS = re.compile(r"\b(Intel|AMD|Hygon|Centaur|Zhaoxin|VIA|Cyrix|NSC|Transmeta|UMC|NexGen|Vortex)\b")


def vendor_from_text(text: str) -> Optional[str]:
    """The vendor ``print_cpu_info`` names in ``smpboot: CPU0: <vendor> <model id>`` (the
    vendor is printed unless the model id contains it): ``intel``, ``amd``, ``hygon``,
    ``centaur``, ``zhaoxin``, ``via``, ... or None."""
    m = _VENDOR_WORDS.search(text)
    return m.group(1).lower() if m else None


@dataclass
class CpuFacts:
    """What a boot log shows of the CPU (the hardware, not the kernel's choices):
    each fact True/False when a line shows it, None when the log is silent; ``evidence``
    maps each known fact to ``"line N: text"``.

    * ``vendor``: from ``smpboot: CPU0: ...`` / ``CPU0: ...`` (not from the ``KERNEL
      supported cpus:`` list, which names the vendors the kernel was built for);
    * ``nx``: ``NX (Execute Disable) protection: active`` / ``... disabled by kernel command
      line option`` / ``... cannot be enabled: non-PAE kernel`` (all three: the CPU has NX),
      ``Notice: NX (Execute Disable) protection missing in CPU!`` (it has not);
    * ``gbpages``: True when the kernel printed ``Using GB pages for direct mapping`` or a
      ``page 1G`` piece (only a CPU with 1 GiB pages allows that);
    * ``la57``: True when the kernel runs 5-level paging (``max_arch_pfn = 0x10000000000``);
    * ``pse``: True when a ``page 2M``/``page 4M`` piece was printed;
    * ``meltdown``: True when PTI is on by default or ``disabled on command line`` (the CPU
      is affected: Intel), False when PTI was ``force enabled`` on an unaffected CPU.
    """

    vendor: Optional[str] = None
    nx: Optional[bool] = None
    gbpages: Optional[bool] = None
    la57: Optional[bool] = None
    pse: Optional[bool] = None
    pge: Optional[bool] = None
    meltdown: Optional[bool] = None
    evidence: Dict[str, str] = field(default_factory=dict)

    def resolve(self, given: Optional[CpuFeatures] = None) -> Tuple[CpuFeatures, List[str]]:
        """The CPU's features: the log's facts where it shows them, else ``given`` (a
        user's description), else the :class:`CpuFeatures` defaults.  Returns the features
        and the names of those neither the log nor ``given`` decided (to be said as
        assumptions).  A fact the log shows wins over ``given`` only where ``given`` is None."""
        base = given if given is not None else CpuFeatures()
        assumed: List[str] = []
        kw = {}
        for f in _FIELDS:
            v = getattr(self, f)
            if given is not None:
                kw[f] = getattr(given, f)
            elif v is not None:
                kw[f] = v
            else:
                kw[f] = getattr(base, f)
                assumed.append(f)
        if given is not None:
            vendor = given.vendor
        elif self.vendor is not None:
            vendor = self.vendor
        else:
            vendor = base.vendor
            assumed.append("vendor")
        return dataclasses.replace(base, vendor=vendor, **kw), assumed

    def contradictions(self, given: CpuFeatures) -> List[str]:
        """The facts of the log that ``given`` contradicts, one line each."""
        out = []
        for f in _FIELDS:
            v = getattr(self, f)
            if v is not None and getattr(given, f) != v:
                out.append("the log shows %s %s (%s), the CPU description says %s"
                           % (f, "present" if v else "absent", self.evidence.get(f, "?"),
                              "present" if getattr(given, f) else "absent"))
        if self.vendor is not None and given.vendor != self.vendor and self.vendor in set(VENDORS.values()):
            out.append("the log shows vendor %s (%s), the CPU description says %s"
                       % (self.vendor, self.evidence.get("vendor", "?"), given.vendor))
        return out

    def to_json(self) -> Dict[str, object]:
        d: Dict[str, object] = {}
        for f in ("vendor",) + _FIELDS + ("meltdown",):
            v = getattr(self, f)
            if v is not None:
                d[f] = v
        d["evidence"] = dict(self.evidence)
        return d
