"""emu/kernel/arch/x86"""
