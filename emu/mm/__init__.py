"""arch/x86/mm: the direct-mapping code, one module per kernel file.

* :mod:`emu.mm.init`     — arch/x86/mm/init.c (init_mem_mapping, split_mem_range, alloc_low_pages ...)
* :mod:`emu.mm.init_64`  — arch/x86/mm/init_64.c (kernel_physical_mapping_init, phys_*_init)
* :mod:`emu.mm.pageattr` — arch/x86/mm/pageattr.c (update_page_count, DirectMap counters)
"""
