"""mm/page_alloc.c (mm/debug_page_alloc.c from 5.11): is ``debug_pagealloc`` on?

The direct map uses 4 KiB pages only while ``debug_pagealloc_enabled()``.  Up to 4.5 x86
asked the build alone (``CONFIG_DEBUG_PAGEALLOC``); from 4.6 it asks at boot, and the
answer is the ``debug_pagealloc=on|off`` option, else ``CONFIG_DEBUG_PAGEALLOC_ENABLE_DEFAULT``
-- in a kernel built with ``CONFIG_DEBUG_PAGEALLOC`` only (:attr:`Profile.debug_pagealloc_runtime`).
"""
from __future__ import annotations

from typing import Optional, Tuple

from emu.kernel.profiles import Profile


def debug_pagealloc_enabled(profile: Profile, built: Optional[bool], enable_default: Optional[bool],
                            option: Optional[bool], cmdline_known: bool = True) -> Tuple[Optional[bool], str]:
    """(on, why), or ``(None, what is missing)`` when the outcome depends on an unknown input.
    ``built``: CONFIG_DEBUG_PAGEALLOC; ``enable_default``: CONFIG_DEBUG_PAGEALLOC_ENABLE_DEFAULT;
    ``option``: ``debug_pagealloc=on`` (True) / ``=off`` (False) / not given (None)."""
    if built is False:
        return False, "the kernel is built without CONFIG_DEBUG_PAGEALLOC"
    if not profile.debug_pagealloc_runtime:
        if built is None:
            return None, "the build (CONFIG_DEBUG_PAGEALLOC; before 4.6 the build alone decides)"
        return True, "CONFIG_DEBUG_PAGEALLOC=y (before 4.6 the build alone decides)"
    if not cmdline_known:
        return None, "the command line (debug_pagealloc=)"
    if option is not None:
        if built is None:
            return None, "the build (CONFIG_DEBUG_PAGEALLOC: debug_pagealloc=%s works only with it)" % (
                "on" if option else "off")
        return option, "debug_pagealloc=%s on the command line" % ("on" if option else "off")
    if enable_default is False:
        return False, "no debug_pagealloc= option and CONFIG_DEBUG_PAGEALLOC_ENABLE_DEFAULT off"
    if built is None or enable_default is None:
        return None, "the build (CONFIG_DEBUG_PAGEALLOC, CONFIG_DEBUG_PAGEALLOC_ENABLE_DEFAULT)"
    return True, "CONFIG_DEBUG_PAGEALLOC_ENABLE_DEFAULT=y"


__all__ = ["debug_pagealloc_enabled"]
