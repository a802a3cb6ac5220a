"""emu/kernel/arch/x86/kernel"""
