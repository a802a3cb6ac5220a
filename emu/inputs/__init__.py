"""emu/inputs: readers of what a user has, each file opened through :mod:`.files` (bounded).

* :mod:`.files` -- ``read_input``/``read_text_input``: regular files only, a size cap
  (``MAX_INPUT_BYTES``), binary data refused on the first block, the full path in errors;
* :mod:`.e820` -- e820 maps (JSON, printed lines, ``/sys/firmware/memmap``);
* :mod:`.logtext` -- kernel log text as found in the wild, turned into messages;
* :mod:`.dmesg` -- boot logs (``parse_boot_log`` over the table ``LINE_KINDS``);
* :mod:`.version` -- the ``Linux version`` line (``KernelVersion``);
* :mod:`.memblock` -- ``memblock=debug`` calls, dumps and the early reservations;
* :mod:`.cpu` -- ``--cpu`` descriptions (``parse_cpu``) and a log's CPU facts (``CpuFacts``);
* :mod:`.kconfig` -- a kernel ``.config`` (``KConfig``);
* :mod:`.sysmap` -- ``System.map`` / kallsyms (``SystemMap``).
"""
