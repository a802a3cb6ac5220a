"""Every input of an emulation checked before anything runs or is allocated.

``setup_arch`` calls :func:`check_inputs` first: the e820 map, the boot parameters
(:class:`emu.kernel.state.BootParams`, whether they came from the command line, a boot log,
an options file or Python) and the memory limit are checked against their types (the
dataclass' type hints) and against the limits of the paging mode they will run in:

* physical addresses and ranges below ``2^MAX_PHYSMEM_BITS`` of the mode (x86-64: the
  profile's 46 or, with 5-level paging, 52 bits; i386 PAE 36, non-PAE 32 bits), the kernel
  image and its BRK page aligned and above the ISA range, inside the direct-map window on
  i386 (``4 GiB - PAGE_OFFSET``);
* i386 virtual addresses (fixmap, kmap) 32-bit and above ``PAGE_OFFSET``;
* ``memmap=`` options in the grammar of the kernel's ``parse_memmap_one``
  (arch/x86/kernel/e820.c), sizes and addresses as its ``memparse`` reads them
  (:func:`emu.inputs.dmesg.memparse`, the one memparse of emu);
* ``mem=`` non-zero (``parse_memopt`` refuses ``mem=0``).

A problem is a :class:`ParamError` (an :class:`emu.errors.EmuError`): one line naming the
parameter, the value and the limit.  The command line names the option instead of the
field (:meth:`ParamError.named`).
"""
from __future__ import annotations

import dataclasses
import functools
import numbers
import typing
from typing import Any, Dict, List, Optional, Tuple

from emu.errors import EmuError
from emu.inputs.dmesg import memparse

U64 = 1 << 64
#: the end of the ISA range: the kernel image, its BRK and static tables lie above it
ISA_END = 0x100000
PAGE_SIZE = 4096


class SetupError(EmuError):
    """A layout the emulator cannot start from (named, one line)."""


class ParamError(SetupError):
    """A boot parameter of the wrong type or outside its limit."""

    def __init__(self, field: str, value: Any, reason: str, show_value: bool = True) -> None:
        self.field, self.value, self.reason, self.show_value = field, value, reason, show_value
        super().__init__(self.named(field))

    def named(self, name: str) -> str:
        """The message with ``name`` (a command-line option) in place of the field name."""
        if not self.show_value:        # the reason names the value itself
            return f"{name}: {self.reason}"
        return f"{name} {show(self.value)}: {self.reason}"


def show(value: Any) -> str:
    """A value as a message shows it: integers in hex from 4096 on, strings quoted."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, numbers.Integral):
        v = int(value)
        return f"{v:#x}" if abs(v) >= 4096 else str(v)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(show(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, str):
        return repr(value)
    return type(value).__name__


def fmt_bytes(n: int) -> str:
    """``n`` bytes in the largest binary unit that keeps three significant digits
    (``4 KiB``, ``1.5 MiB``, ``128 MiB``)."""
    for unit, shift in (("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            v = n / (1 << shift)
            return f"{v:.0f} {unit}" if v >= 100 or v == int(v) else f"{v:.3g} {unit}"
    return f"{n} B"


# ---------------------------------------------------------------------------
# the mode's limits
# ---------------------------------------------------------------------------
def mode_name(params) -> str:
    if params.arch == "i386":
        return "i386 PAE" if params.pae else "i386 (non-PAE)"
    return "x86_64 5-level" if params.la57 else "x86_64 4-level"


def phys_bits(params, profile) -> int:
    """``MAX_PHYSMEM_BITS`` of the mode: what RAM, the kernel image and every physical
    range can reach (asm/sparsemem.h; the profile's for x86-64)."""
    if params.arch == "i386":
        return 36 if params.pae else 32
    return profile.max_physmem_bits_l5 if params.la57 else profile.max_physmem_bits


# ---------------------------------------------------------------------------
# memmap= (arch/x86/kernel/e820.c parse_memmap_one)
# ---------------------------------------------------------------------------
#: memmap= separators and the e820 type of the range they add
MEMMAP_TYPES = {"@": 1, "#": 3, "$": 2, "!": 12}


def parse_size_text(text: str) -> int:
    """A size or address as the kernel's ``memparse`` reads it, all of ``text``, not wrapped:
    :class:`EmuError` when it is empty, negative, not a number or >= 2^64."""
    t = text.strip()
    if not t:
        raise EmuError("empty value (a number: 0x hex, 0 octal or decimal, optional K/M/G/T/P/E suffix)")
    if t[0] in "-+":
        if t[0] == "-" and memparse(t[1:])[1] != t[1:]:
            raise EmuError(f"{text!r} is negative (sizes and addresses are 0 .. 2^64-1)")
        raise EmuError(f"{text!r} is not a number (0x hex, 0 octal or decimal, optional K/M/G/T/P/E suffix)")
    v, rest = memparse(t, wrap=False)
    if rest == t or rest:
        raise EmuError(f"{text!r} is not a number (0x hex, 0 octal or decimal, optional K/M/G/T/P/E suffix)")
    if v >= U64:
        raise EmuError(f"{text!r} = {v:#x} does not fit 64 bits (at most 0xffffffffffffffff)")
    return v


def parse_memmap_one(text: str) -> Tuple[str, int, int, int]:
    """One ``memmap=`` option as ``parse_memmap_one`` reads it: ``("exactmap", 0, 0, 0)``,
    ``("limit", size, 0, 0)`` for ``nn[KMG]`` (RAM above ``nn`` removed), or ``("add",
    size, start, type)`` for ``nn@ss`` (RAM), ``nn#ss`` (ACPI), ``nn$ss`` (reserved),
    ``nn!ss`` (PRAM).  Stricter than the kernel, which stops at the first character it
    does not know: every character must belong to the option.  ``nn%ss-old+new``
    (4.17+ type edits) is not emulated.
    (The result for a ``str`` is remembered: it depends on the text alone; a bad option
    raises every time.)"""
    if type(text) is str:
        return _parse_memmap_cached(text)
    return _parse_memmap_one(text)


def _parse_memmap_one(text: str) -> Tuple[str, int, int, int]:
    """The parse itself (:func:`parse_memmap_one`)."""
    t = text.strip()
    if t == "exactmap":
        return ("exactmap", 0, 0, 0)
    if "%" in t:
        raise ParamError("memmap", text, "the nn%ss-old+new form (e820 type edits) is not emulated")
    for sep, typ in MEMMAP_TYPES.items():
        if sep in t:
            size_s, start_s = t.split(sep, 1)
            try:
                size = parse_size_text(size_s)
                start = parse_size_text(start_s)
            except EmuError as e:
                raise ParamError("memmap", text, f"{e} (the form is SIZE{sep}START)") from None
            if size == 0:
                raise ParamError("memmap", text, "an empty range (size 0)")
            if start + size > U64:
                raise ParamError("memmap", text, f"[{start:#x}, {start + size:#x}) ends beyond 2^64")
            return ("add", size, start, typ)
    try:
        size = parse_size_text(t)
    except EmuError as e:
        raise ParamError("memmap", text, f"{e} (forms: exactmap, SIZE, SIZE@START, SIZE#START, "
                                         f"SIZE$START, SIZE!START)") from None
    if size == 0:
        raise ParamError("memmap", text, "memmap=0 would remove all RAM")
    return ("limit", size, 0, 0)


_parse_memmap_cached = functools.lru_cache(maxsize=1024)(_parse_memmap_one)


# ---------------------------------------------------------------------------
# types from the dataclass
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def param_types() -> Dict[str, Any]:
    """BootParams' fields and their type hints."""
    from emu.kernel.params import BootParams
    return typing.get_type_hints(BootParams)


#: fields whose value is one of a few strings
ENUMS: Dict[str, Tuple[str, ...]] = {"arch": ("x86_64", "i386")}


def unwrap_optional(hint) -> Tuple[Any, bool]:
    """``(inner type, optional?)`` of a type hint."""
    if typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def describe_type(hint) -> str:
    inner, opt = unwrap_optional(hint)
    origin = typing.get_origin(inner)
    if inner is bool:
        s = "a bool"
    elif inner is int:
        s = "an int"
    elif inner is str:
        s = "a string"
    elif origin in (list, List):
        s = f"a list of {_plural(typing.get_args(inner)[0])}"
    elif origin in (dict, Dict):
        s = f"a mapping of {_plural(typing.get_args(inner)[0])} to {_plural(typing.get_args(inner)[1])}"
    elif origin in (tuple, Tuple):
        args = typing.get_args(inner)
        s = f"a pair of {_plural(args[0])}" if len(args) == 2 else f"a tuple of {len(args)}"
    else:
        s = f"a {getattr(inner, '__name__', str(inner))}"
    return s + (" or None" if opt else "")


def _plural(hint) -> str:
    if hint is int:
        return "ints"
    if hint is str:
        return "strings"
    if typing.get_origin(hint) in (tuple, Tuple):
        return "(start, end) pairs"
    return getattr(hint, "__name__", str(hint)) + "s"


_HINT_INFO: Dict[int, Tuple[Any, Tuple[Any, bool, Any, Tuple[Any, ...]]]] = {}


def _hint_info(hint) -> Tuple[Any, bool, Any, Tuple[Any, ...]]:
    """``(inner type, optional?, origin of inner, args of inner)`` of a type hint, once per hint
    object (the typing introspection is the costly part of :func:`check_type`; keyed by
    identity, since hashing a typing hint costs as much as unwrapping it)."""
    got = _HINT_INFO.get(id(hint))
    if got is not None and got[0] is hint:
        return got[1]
    inner, opt = unwrap_optional(hint)
    info = (inner, opt, typing.get_origin(inner), typing.get_args(inner))
    if len(_HINT_INFO) < 4096:     # hints are the dataclasses' own (a handful); bounded anyway
        _HINT_INFO[id(hint)] = (hint, info)
    return info


@functools.lru_cache(maxsize=None)
def _dataclass_hints(cls) -> Tuple[Tuple[str, Any], ...]:
    """``(field name, type hint)`` of a dataclass' fields, in order."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


@functools.lru_cache(maxsize=None)
def _boot_fields() -> Tuple[Tuple[str, Any, Any, bool, Any], ...]:
    """BootParams' ``(field, hint, plain type or None, optional?, frozen record)``: bool, int
    and str fields name their type, whose exact instances :func:`check_boot_params` takes as
    they are (list and dict fields name list and dict: an empty one is taken as a new empty
    one); a field holding a frozen dataclass of such fields (``cpu``) names the class and
    ``(field, plain type)`` of its fields (see :func:`_plain_record`)."""
    from emu.kernel.params import BootParams
    out = []
    for name, hint in _dataclass_hints(BootParams):
        inner, opt, _, _ = _hint_info(hint)
        rec = None
        if isinstance(inner, type) and dataclasses.is_dataclass(inner) \
                and inner.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            sub = [(n, _hint_info(h)) for n, h in _dataclass_hints(inner)]
            if all(info[0] in (bool, int, str) and not info[1] for _, info in sub):
                rec = (inner, tuple((n, info[0]) for n, info in sub))
        origin = _hint_info(hint)[2]
        if inner in (bool, int, str):
            exact = inner
        elif origin in (list, List):
            exact = list           # an empty list is checked as a new empty list
        elif origin in (dict, Dict):
            exact = dict
        else:
            exact = None
        out.append((name, hint, exact, opt, rec))
    return tuple(out)


def _plain_record(v: Any, rec: Any) -> bool:
    """``v`` is an instance of exactly the frozen dataclass ``rec[0]`` whose every field holds
    exactly its plain type (bool, int in [0, 2^64), str): what :func:`check_type` would copy
    field for field unchanged (frozen, so the same object serves)."""
    if rec is None or type(v) is not rec[0]:
        return False
    for n, t in rec[1]:
        x = getattr(v, n)
        if type(x) is not t or (t is int and not 0 <= x < U64):
            return False
    return True


def check_type(field: str, value: Any, hint: Any = None) -> Any:
    """``value`` as field ``field``'s type hint wants it, numpy scalars made Python ints and
    lists made tuples where a tuple is wanted; :class:`ParamError` otherwise."""
    if hint is None:
        hint = param_types()[field]
    inner, opt, origin, args = _hint_info(hint)
    if value is None:
        if opt:
            return None
        raise ParamError(field, value, f"must be {describe_type(hint)}")
    if inner is bool:
        if value is True or value is False:
            return value
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            return bool(value)
    elif inner is int:
        if type(value) is int:
            return value
        if not isinstance(value, bool) and isinstance(value, numbers.Integral):
            return int(value)
    elif inner is str:
        if isinstance(value, str):
            return value
    elif origin in (list, List):
        if isinstance(value, (list, tuple)):
            (elem,) = args
            return [check_type(field, v, elem) for v in value]
    elif origin in (tuple, Tuple):
        if isinstance(value, (list, tuple)) and len(value) == len(args):
            return tuple(check_type(field, v, a) for v, a in zip(value, args))
    elif origin in (dict, Dict):
        if isinstance(value, dict):
            kt, vt = args
            return {check_type(field, k, kt): check_type(f"{field}[{k!r}]", v, vt) for k, v in value.items()}
    elif isinstance(inner, type) and dataclasses.is_dataclass(inner):
        if isinstance(value, inner):
            return dataclasses.replace(value, **{name: check_type(f"{field}.{name}", getattr(value, name), h)
                                                 for name, h in _dataclass_hints(inner)})
    elif isinstance(value, inner):
        return value
    raise ParamError(field, value, f"must be {describe_type(hint)}")


# ---------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------
#: physical addresses in the kernel image (page aligned, above the ISA range)
IMAGE_ADDRESSES = ("kernel_start", "brk_base", "head_brk_base", "swapper_pg_dir_addr", "initial_pg_pmd_addr",
                   "initial_pg_fixmap_addr", "bm_pte_addr")
#: CONFIG_PAGE_OFFSET when not given (the 3G/1G split)
DEFAULT_PAGE_OFFSET_32 = 0xC0000000
#: other physical addresses of the image (not necessarily page aligned)
IMAGE_ENDS = ("image_end", "init_end", "brk_end")
#: i386 virtual addresses above PAGE_OFFSET
VIRTUAL_32 = ("fixmap_bottom", "btmap_begin")


def check_boot_params(params, profile) -> Any:
    """``params`` checked (types, then limits of the mode it runs in); returns a copy with
    numpy integers made ints and lists made tuples where the field is a tuple.  Raises
    :class:`ParamError`."""
    BootParams, copy_params = _params_api()
    if not isinstance(params, BootParams):
        raise ParamError("params", params, "must be an emu.BootParams")
    p = copy_params(params, **_field_values(params, None))     # a copy: never the caller's object
    _check_limits(p, profile)
    return p


def check_resolved_params(params, checked, profile) -> Any:
    """:func:`check_boot_params` for ``params`` that ``setup_arch`` made from ``checked`` (a
    result of :func:`check_boot_params`) by filling fields in (``resolve_params``,
    ``resolve_brk``): a field that still holds the very object ``checked`` holds passed its
    type check there; every other field is checked as :func:`check_boot_params` checks it,
    and every limit is checked again.  ``params`` is the caller's own new object: the
    checked values go into it (no further copy), and it is returned."""
    BootParams, _ = _params_api()
    if type(params) is not BootParams or type(checked) is not BootParams or params is checked:
        return check_boot_params(params, profile)
    for name, v in _field_values(params, checked.__dict__).items():
        setattr(params, name, v)
    _check_limits(params, profile)
    return params


_MISSING = object()


def _field_values(params, checked: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Every field of ``params`` checked by type (and its integers as unsigned 64-bit); the
    values to replace (:func:`check_type`'s results where they are not the field's value).
    ``checked``: the fields of an earlier checked object, whose very values are not checked
    again."""
    BootParams, _ = _params_api()
    values = {}
    # the fields as attributes hold them (a plain BootParams: its __dict__, read once)
    attrs = params.__dict__ if type(params) is BootParams else None
    fields = _boot_fields()
    if checked is not None and attrs is not None:
        # only the fields whose object is not the one checked before (in the fields' order)
        fields = tuple(f for f in fields if attrs.get(f[0], _MISSING) is not checked.get(f[0], _MISSING))
    for name, hint, exact, opt, rec in fields:
        v = attrs[name] if attrs is not None and name in attrs else getattr(params, name)
        # a value of exactly the field's plain type (or None where allowed) is what check_type
        # would return as it is; everything else goes through it
        if v is None and opt:
            continue
        tv = type(v)
        if tv is list or tv is dict:
            if tv is exact and not v:
                values[name] = tv()        # what check_type makes of an empty list/mapping
                continue
            v = check_type(name, v, hint)
            values[name] = v
        elif tv is not exact:
            if _plain_record(v, rec):
                continue          # a frozen record check_type would copy unchanged, no integers
            v = check_type(name, v, hint)
            values[name] = v
        if type(v) is int:
            if not 0 <= v < U64:
                _check_unsigned(name, v)
        elif type(v) is not bool and type(v) is not str:
            _check_unsigned(name, v)
    return values


def _check_limits(p, profile) -> None:
    """The limits of the mode ``p`` runs in (``p`` checked by type): :class:`ParamError`."""
    for name, choices in ENUMS.items():
        if getattr(p, name) not in choices:
            raise ParamError(name, getattr(p, name), f"must be one of {', '.join(choices)}")
    if p.la57 and p.arch != "x86_64":
        raise ParamError("la57", True, "5-level paging is x86_64 only")
    if p.la57 and not profile.la57_supported:
        raise ParamError("la57", True, f"profile {profile.name} has no 5-level paging (4.20+)")
    bits = phys_bits(p, profile)
    top = 1 << bits
    i386 = p.arch == "i386"
    po = p.page_offset_32 if p.page_offset_32 is not None else DEFAULT_PAGE_OFFSET_32
    # the limits as the messages name them (made only for a message)
    _limit = _LimitText(bits, p, profile, i386, po)
    if i386:
        if not (0x40000000 <= po <= 0xC0000000 and po % (4 << 20) == 0):
            raise ParamError("page_offset_32", po, "must be a 4 MiB aligned PAGE_OFFSET in "
                                                   "[0x40000000, 0xc0000000] (CONFIG_VMSPLIT_*)")
    window = (1 << 32) - po if i386 else top        # where the kernel image can lie
    if p.image_tables:
        IMAGE_TABLES = _image_tables()
        for n in p.image_tables:
            if n not in IMAGE_TABLES:
                raise ParamError("image_tables", n, f"is not one of {', '.join(IMAGE_TABLES)}")
    image = [(name, getattr(p, name)) for name in IMAGE_ADDRESSES]
    if p.image_tables:
        image += [(f"image_tables[{n!r}]", a) for n, a in sorted(p.image_tables.items())]
    for name, v in image:
        if v is None:
            continue
        if v & (PAGE_SIZE - 1):
            raise ParamError(name, v, "is not page aligned")
        if v < ISA_END:
            raise ParamError(name, v, f"lies below {ISA_END:#x} (the kernel image lies above the ISA range)")
        if v + PAGE_SIZE > window:
            raise ParamError(name, v, f"lies beyond {_limit.window_text}")
    for name in IMAGE_ENDS:
        v = getattr(p, name)
        if v is not None and not ISA_END < v <= window:
            raise ParamError(name, v, f"must lie in ({ISA_END:#x}, {window:#x}] ({_limit.window_text})")
    if p.brk_end is not None and p.brk_base is None:
        # resolve_brk: the page-table buffer is the BRK's last pages below round_up(brk_end)
        is64 = p.arch == "x86_64"
        rm = p.randomize_memory if p.randomize_memory is not None else bool(profile.default_randomize_memory)
        l5 = (p.x86_5level_config if p.x86_5level_config is not None else bool(profile.default_5level_config)) \
            or bool(profile.x86_5level_always)
        pages = profile.pgt_buf_count(rm and is64, l5 and is64)
        base = -(-p.brk_end // PAGE_SIZE) * PAGE_SIZE - pages * PAGE_SIZE
        if base < ISA_END:
            raise ParamError("brk_end", p.brk_end, f"leaves no room below it for the {pages}-page BRK page-table "
                                                   f"buffer above {ISA_END:#x} (profile {profile.name})")
    if p.initrd is not None:
        _check_range("initrd", p.initrd, top, _limit)
    for r in p.reserves:
        _check_range("reserves", r, top, _limit)
    if p.xen_extra_mem is not None and not 0 < p.xen_extra_mem < top:
        raise ParamError("xen_extra_mem", p.xen_extra_mem, f"must lie in (0, {top:#x}) ({_limit.text})")
    if p.highmem is not None and not 0 <= p.highmem < top:
        raise ParamError("highmem", p.highmem, f"must lie below {_limit.text}")
    if p.e820_max_entries is not None and not 2 <= p.e820_max_entries <= 1 << 20:
        raise ParamError("e820_max_entries", p.e820_max_entries, "must be in [2, 2^20]")
    if p.mem_limit is not None:
        if p.mem_limit == 0:
            raise ParamError("mem_limit", 0, "mem=0 is refused by the kernel (parse_memopt: -EINVAL)")
        if p.mem_limit >= U64:
            raise ParamError("mem_limit", p.mem_limit, "does not fit 64 bits")
    if p.kernel_link_start is not None and not (ISA_END <= p.kernel_link_start < window
                                                and p.kernel_link_start % (2 << 20) == 0):
        raise ParamError("kernel_link_start", p.kernel_link_start, f"must be 2 MiB aligned in [{ISA_END:#x}, "
                                                                   f"{window:#x}) ({_limit.window_text})")
    if p.bm_pte_slot is not None and not 0 <= p.bm_pte_slot < 512:
        raise ParamError("bm_pte_slot", p.bm_pte_slot, "must be a level2_fixmap_pgt slot in [0, 511]")
    if not 0 <= p.fixmap_ptes <= 1 << 20:
        raise ParamError("fixmap_ptes", p.fixmap_ptes, "must lie in [0, 2^20] (PTEs of the 4 GiB space)")
    for spec in p.memmap:
        kind, size, start, _ = parse_memmap_one(spec)
        if kind == "add" and start + size > top:
            raise ParamError("memmap", spec, f"[{start:#x}, {start + size:#x}) ends beyond {_limit.text}")
    if p.lowmem_limit is not None and not 0 < p.lowmem_limit <= (1 << 32) - po:
        raise ParamError("lowmem_limit", p.lowmem_limit, f"must lie in (0, {(1 << 32) - po:#x}] "
                                                         f"(4 GiB - PAGE_OFFSET {po:#x})")
    for name in VIRTUAL_32:
        v = getattr(p, name)
        if v is not None and not po <= v < 1 << 32:
            raise ParamError(name, v, f"must be an i386 virtual address in [PAGE_OFFSET {po:#x}, 0xffffffff]")
    if p.kmap_range is not None:
        lo, hi = p.kmap_range
        if not po <= lo <= hi < 1 << 32:
            raise ParamError("kmap_range", p.kmap_range, f"must be (lowest, highest) i386 virtual addresses in "
                                                         f"[PAGE_OFFSET {po:#x}, 0xffffffff], lowest first")
    for v in p.fixmap_static_pmds or ():
        if not po <= v < 1 << 32:
            raise ParamError("fixmap_static_pmds", v, f"must be i386 virtual addresses in "
                                                      f"[PAGE_OFFSET {po:#x}, 0xffffffff]")


def _check_unsigned(name: str, v: Any) -> None:
    """Every integer of a boot parameter (addresses, sizes, counts, slots; inside lists,
    pairs and mappings too) is an unsigned 64-bit value, whatever the mode."""
    if isinstance(v, bool):
        return
    if isinstance(v, int):
        if not 0 <= v < U64:
            raise ParamError(name, v, "must lie in [0, 2^64) (addresses, sizes and counts are unsigned 64-bit)")
    elif isinstance(v, (list, tuple)):
        for x in v:
            _check_unsigned(name, x)
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_unsigned(f"{name}[{k!r}]", x)


#: what :func:`check_boot_params` checks of every BootParams field beyond its type (a test
#: keeps this in step with the dataclass: a new field must say how it is checked)
FIELD_LIMITS: Dict[str, str] = {
    "arch": "one of ENUMS['arch']",
    "pae": "type (bool)",
    "cpu": "type (CpuFeatures, every feature a bool); la57 needs x86_64 and a 4.20+ profile",
    "gbpages": "type (bool or None)",
    "debug_pagealloc": "type (bool or None)",
    "randomize_memory": "type (bool or None)",
    "x86_5level_config": "type (bool or None)",
    "la57": "x86_64 only, profiles with 5-level paging",
    "pti": "type (bool or None)",
    "movable_node": "type (bool or None)",
    "kernel_start": "page aligned, above the ISA range, below the mode's physical limit / i386 window",
    "brk_base": "page aligned, above the ISA range, below the mode's physical limit / i386 window",
    "brk_end": "in (ISA end, window]; with no brk_base, room for the profile's BRK buffer below it",
    "initrd": "a non-empty range below the mode's physical limit",
    "reserves": "non-empty ranges below the mode's physical limit",
    "xen_extra_mem": "in (0, the mode's physical limit)",
    "fixmap_ptes": "in [0, 2^20]",
    "mem_limit": "non-zero, below 2^64",
    "memmap": "parse_memmap_one's grammar; added ranges below the mode's physical limit",
    "e820_max_entries": "in [2, 2^20] (E820_MAX_ENTRIES)",
    "swapper_pg_dir_addr": "page aligned, above the ISA range, below the mode's physical limit / i386 window",
    "kernel_link_start": "2 MiB aligned in [ISA end, the mode's physical limit / i386 window)",
    "image_tables": "known table names; page aligned addresses above the ISA range, inside the window",
    "bm_pte_slot": "a level2_fixmap_pgt slot in [0, 511]",
    "page_offset_32": "i386: 4 MiB aligned in [0x40000000, 0xc0000000]",
    "lowmem_limit": "in (0, 4 GiB - PAGE_OFFSET]",
    "highmem": "below the mode's physical limit",
    "image_end": "in (ISA end, window]",
    "init_end": "in (ISA end, window]",
    "fixmap_bottom": "an i386 virtual address in [PAGE_OFFSET, 2^32)",
    "kmap_range": "i386 virtual addresses in [PAGE_OFFSET, 2^32), lowest first",
    "fixmap_static_pmds": "i386 virtual addresses in [PAGE_OFFSET, 2^32)",
    "highmem_config": "type (bool or None)",
    "head_brk_base": "page aligned, above the ISA range, inside the window",
    "initial_pg_pmd_addr": "page aligned, above the ISA range, inside the window",
    "initial_pg_fixmap_addr": "page aligned, above the ISA range, inside the window",
    "bm_pte_addr": "page aligned, above the ISA range, inside the window",
    "btmap_begin": "an i386 virtual address in [PAGE_OFFSET, 2^32)",
}


def _check_range(name: str, r: Tuple[int, int], top: int, limit: "_LimitText") -> None:
    s, e = r
    if s < 0:
        raise ParamError(name, r, "starts below 0")
    if not s < e:
        raise ParamError(name, r, "is an empty or inverted range (start < end expected)")
    if e > top:
        raise ParamError(name, r, f"ends beyond {limit.text}")


class _LimitText:
    """How a message names the mode's physical limit (``text``) and where the kernel image
    can lie (``window_text``), formatted only when a message needs them."""

    __slots__ = ("bits", "p", "profile", "i386", "po")

    def __init__(self, bits: int, p: Any, profile: Any, i386: bool, po: int) -> None:
        self.bits, self.p, self.profile, self.i386, self.po = bits, p, profile, i386, po

    @property
    def text(self) -> str:
        top = 1 << self.bits
        return f"the physical address limit {top:#x} (2^{self.bits}, {mode_name(self.p)}, profile {self.profile.name})"

    @property
    def window_text(self) -> str:
        if self.i386:
            window = (1 << 32) - self.po
            return f"the i386 direct-map window {window:#x} (4 GiB - PAGE_OFFSET {self.po:#x})"
        return self.text


@functools.lru_cache(maxsize=None)
def _params_api() -> Tuple[Any, Any]:
    """(BootParams, its field-for-field copy) (imported once: emu.kernel.params imports this
    module's users)."""
    from emu.kernel.params import BootParams, copy_params
    return BootParams, copy_params


@functools.lru_cache(maxsize=None)
def _e820_entry() -> Any:
    from emu.inputs.e820 import E820Entry
    return E820Entry


@functools.lru_cache(maxsize=None)
def _image_tables() -> Tuple[str, ...]:
    from emu.kernel.arch.x86.kernel.head64 import IMAGE_TABLES
    return IMAGE_TABLES


def check_e820(e820) -> None:
    """The e820 map handed to an emulation: entries of 64-bit ``addr``, ``size`` (whose end
    fits 64 bits) and a 32-bit ``type`` (``struct e820entry``)."""
    entries = getattr(e820, "entries", None)
    if not isinstance(entries, list):
        raise ParamError("e820", e820, "must be an e820 map (emu.inputs.e820.E820Map: load_e820, "
                                       "parse_e820_json, parse_e820_text)")
    entry_type = _e820_entry()
    for i, e in enumerate(entries):
        if type(e) is entry_type:           # a frozen E820Entry: its three fields are there
            a, n, t = e.addr, e.size, e.type
        else:
            a, n, t = getattr(e, "addr", None), getattr(e, "size", None), getattr(e, "type", None)
        if type(a) is int and type(n) is int and type(t) is int and 0 <= a < U64 and 0 <= n < U64 \
                and 0 <= t < 1 << 32:       # plain ints in range (the usual case): only the end is left
            if a + n > U64:
                raise ParamError(f"e820[{i}]", (a, a + n), "ends beyond 2^64")
            continue
        for name, lim in (("addr", U64), ("size", U64), ("type", 1 << 32)):
            v = getattr(e, name, None)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= int(v) < lim:
                raise ParamError(f"e820[{i}].{name}", v, f"must be an int in [0, {lim:#x})")
        if e.addr + e.size > U64:
            raise ParamError(f"e820[{i}]", (e.addr, e.addr + e.size), "ends beyond 2^64")


def check_max_memory(max_memory: Optional[int]) -> None:
    if max_memory is None:
        return
    if isinstance(max_memory, bool) or not isinstance(max_memory, numbers.Integral) or max_memory <= 0:
        raise ParamError("max_memory", max_memory, "must be a positive number of bytes")


def check_inputs(profile, params, e820, max_memory: Optional[int] = None):
    """Everything ``setup_arch`` is handed, checked before it reads any of it; returns the
    checked copy of ``params``."""
    from emu.kernel.profiles import Profile
    if not isinstance(profile, Profile):
        raise ParamError("profile", profile, "must be an emu.kernel.profiles.Profile (get_profile)")
    check_e820(e820)
    check_max_memory(max_memory)
    return check_boot_params(params, profile)


__all__ = ["SetupError", "ParamError", "U64", "check_inputs", "check_boot_params", "check_resolved_params",
           "check_e820",
           "check_max_memory", "check_type", "parse_memmap_one", "parse_size_text", "param_types",
           "phys_bits", "mode_name", "fmt_bytes", "show", "unwrap_optional", "describe_type", "ENUMS",
           "FIELD_LIMITS"]
