"""emu/kernel/arch"""
