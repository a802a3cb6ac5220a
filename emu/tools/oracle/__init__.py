"""A real-kernel oracle: boot a Linux kernel under QEMU, stop it right after
``init_mem_mapping()``, read the page tables it built, and diff them with
emu's on the same inputs.  See docs/oracle.md."""
from emu.tools.oracle.compare import Comparison, compare, format_comparison
from emu.tools.oracle.qemu import Guest, OracleError, QemuLayout, run_guest

__all__ = ["Comparison", "Guest", "OracleError", "QemuLayout", "compare", "format_comparison", "run_guest"]
