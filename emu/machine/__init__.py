"""emu/machine"""
