"""emu/boot"""
