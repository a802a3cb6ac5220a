"""emu/check"""
