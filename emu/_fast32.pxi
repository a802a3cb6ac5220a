# 32-bit (i386 PAE and non-PAE) loops of emu._fast; included at the end of _fast.pyx.
