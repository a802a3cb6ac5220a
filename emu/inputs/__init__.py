"""emu/inputs"""
