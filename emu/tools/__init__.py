"""emu/tools"""
