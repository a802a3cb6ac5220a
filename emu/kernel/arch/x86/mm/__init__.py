"""emu/kernel/arch/x86/mm"""
