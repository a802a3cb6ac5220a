"""emu/kernel"""
