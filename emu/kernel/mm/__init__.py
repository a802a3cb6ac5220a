"""emu/kernel/mm"""
