"""Pure-Python reference of the loops in ``emu/_fast.pyx``.

Same signatures, same results, byte for byte (the tests compare them).  It is
the baseline of the benchmarks and the fallback when the extension is not
built; select it with ``EMU_PURE=1`` or ``emu.backend.use("python")``.
"""
from __future__ import annotations

EVENT_DONE = 0
EVENT_DESCEND = 1
EVENT_ALLOC = 2
EVENT_SPLIT = 3
FAULT_GP = -2

_PSE = 1 << 7
_M64 = (1 << 64) - 1


def _ram_any(ram_s, ram_e, start, end):
    i = _bisect_np(ram_e, start)
    return i < len(ram_s) and int(ram_s[i]) < end


def _bisect_np(arr, x):
    lo, hi = 0, len(arr)
    while lo < hi:
        mid = (lo + hi) // 2
        if int(arr[mid]) <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def pte_fill(table, idx, paddr, paddr_end, flags, pfn_mask, after_bootmem, ram_s, ram_e):
    last = paddr_end
    pages = 0
    for i in range(idx, 512):
        nxt = (paddr & ~0xFFF) + 0x1000
        if paddr >= paddr_end:
            if not after_bootmem and not _ram_any(ram_s, ram_e, paddr & ~0xFFF, nxt):
                table[i] = 0
        elif int(table[i]) != 0:
            if not after_bootmem:
                pages += 1
        else:
            table[i] = (paddr & pfn_mask) | flags
            last = nxt
            pages += 1
        paddr = nxt
    return last, pages


def level_scan(table, idx, paddr, paddr_end, shift, large_ok, leaf_flags, pfn_mask,
               after_bootmem, ram_s, ram_e, last):
    size = 1 << shift
    mask = _M64 & ~(size - 1)
    pages = 0
    i = idx
    ev = EVENT_DONE
    while i < 512:
        nxt = (paddr & mask) + size
        e = int(table[i])
        if paddr >= paddr_end:
            if not after_bootmem and not _ram_any(ram_s, ram_e, paddr & mask, nxt):
                table[i] = 0
        elif e != 0:
            if not e & _PSE:
                ev = EVENT_DESCEND
                break
            if large_ok:
                if not after_bootmem:
                    pages += 1
                last = nxt
            else:
                ev = EVENT_SPLIT
                break
        elif large_ok:
            table[i] = (paddr & mask & pfn_mask) | leaf_flags
            pages += 1
            last = nxt
        else:
            ev = EVENT_ALLOC
            break
        paddr = nxt
        i += 1
    return ev, i, paddr, last, pages


def _read_entry(directory, blocks, frames, pa):
    pfn = pa >> 12
    d = pfn >> 18
    if d >= directory.shape[0]:
        return 0
    b = int(directory[d])
    if b < 0:
        return 0
    s = int(blocks[b, pfn & 0x3FFFF])
    if s < 0:
        return 0
    return int(frames[s, (pa & 0xFFF) >> 3])


def walk64(directory, blocks, frames, cr3, levels, maxphyaddr, nxe, wp, smep, access, vas,
           out_pa, out_shift, out_leaf, out_flags, out_err):
    addr_mask = ((1 << maxphyaddr) - 1) & ~0xFFF
    rsvd_hi = ((1 << 52) - 1) & ~((1 << maxphyaddr) - 1)
    if not nxe:
        rsvd_hi |= 1 << 63
    vabits = 57 if levels == 5 else 48
    for k in range(len(vas)):
        va = int(vas[k])
        out_pa[k] = 0
        out_shift[k] = 0
        out_leaf[k] = 0
        out_flags[k] = 0
        top = va >> (vabits - 1)
        if top != 0 and top != (1 << (65 - vabits)) - 1:
            out_err[k] = FAULT_GP
            continue
        table = cr3 & addr_mask
        eff_rw, eff_us, eff_nx = 2, 4, 0
        err = -1
        lvl = levels
        while True:
            shift = 12 + 9 * (lvl - 1)
            e = _read_entry(directory, blocks, frames, table + (((va >> shift) & 0x1FF) << 3))
            if not e & 1:
                err = 0
                break
            rsvd = (e & rsvd_hi) != 0
            if e & _PSE:
                if lvl >= 4:
                    rsvd = True
                elif lvl == 3:
                    rsvd = rsvd or (e & 0x3FFFE000) != 0
                elif lvl == 2:
                    rsvd = rsvd or (e & 0x1FE000) != 0
            if rsvd:
                err = 1 | 8
                break
            eff_rw &= e
            eff_us &= e
            if e >> 63:
                eff_nx = 1 << 63
            if lvl == 1 or (lvl <= 3 and e & _PSE):
                break
            table = e & addr_mask
            lvl -= 1
        if err < 0:
            fault = False
            if access & 2:
                if not eff_us:
                    fault = True
                elif access & 1 and not eff_rw:
                    fault = True
                elif access & 4 and nxe and eff_nx:
                    fault = True
            else:
                if access & 1 and wp and not eff_rw:
                    fault = True
                elif access & 4 and ((nxe and eff_nx) or (smep and eff_us)):
                    fault = True
            if fault:
                err = 1
            else:
                low = (1 << shift) - 1
                out_pa[k] = (e & addr_mask & ~low) | (va & low)
                out_shift[k] = shift
                out_leaf[k] = e
                out_flags[k] = (e & ~6 & ~addr_mask & ~(1 << 63) & _M64) | eff_rw | eff_us | eff_nx
                out_err[k] = -1
                continue
        if access & 1:
            err |= 2
        if access & 2:
            err |= 4
        if access & 4 and (nxe or smep):
            err |= 16
        out_err[k] = err


def enumerate64(directory, blocks, frames, root_pfn, levels, top_lo, top_hi, maxphyaddr,
                runs, tables, counts):
    addr_mask = ((1 << maxphyaddr) - 1) & ~0xFFF
    rsvd_hi = ((1 << 52) - 1) & ~((1 << maxphyaddr) - 1)
    vabits = 57 if levels == 5 else 48
    signbit = 1 << (vabits - 1)
    state = {"nr": 0, "nt": 0, "n": [0, 0, 0], "rsv": 0, "cur": None, "ok": True}

    def flush():
        cur = state["cur"]
        if cur is not None:
            if state["nr"] < runs.shape[0]:
                runs[state["nr"]] = cur
            else:
                state["ok"] = False
            state["nr"] += 1

    def visit(table_pa, lvl, lo, hi, vabase, effv):
        shift = 12 + 9 * (lvl - 1)
        for i in range(lo, hi):
            e = _read_entry(directory, blocks, frames, table_pa + (i << 3))
            if not e & 1:
                continue
            if e & rsvd_hi or (lvl >= 4 and e & _PSE):
                state["rsv"] += 1
                continue
            va = vabase | (i << shift)
            leaf = lvl == 1 or (lvl <= 3 and e & _PSE)
            eff = (effv & (e & 6)) | ((1 << 63) if (e >> 63 or effv >> 63) else 0)
            if not leaf:
                if state["nt"] < tables.shape[0]:
                    tables[state["nt"]] = ((e & addr_mask) >> 12, lvl - 1, table_pa >> 12, i)
                else:
                    state["ok"] = False
                state["nt"] += 1
                visit(e & addr_mask, lvl - 1, 0, 512, va, eff)
                continue
            size = 1 << shift
            pa = e & addr_mask & ~(size - 1)
            if lvl == 1:
                flags = e & ~addr_mask & _M64
                state["n"][0] += 1
            else:
                flags = e & ~(addr_mask & ~0x1000) & _M64
                state["n"][lvl - 1] += 1
            if va & signbit:
                va |= ~(signbit * 2 - 1) & _M64
            cur = state["cur"]
            if (cur is not None and va == cur[1] and pa == cur[2] + (cur[1] - cur[0]) and shift == cur[3]
                    and flags == cur[4] and eff == cur[5]):
                state["cur"] = (cur[0], (va + size) & _M64, cur[2], cur[3], cur[4], cur[5])
            else:
                flush()
                state["cur"] = (va, (va + size) & _M64, pa, shift, flags, eff)

    visit(root_pfn << 12, levels, top_lo, top_hi, 0, 6)
    flush()
    counts[:] = [state["nr"], state["nt"], state["n"][0], state["n"][1], state["n"][2], state["rsv"]]
    return state["ok"]
