"""Build script: compiles emu/_fast.pyx (the table-writing and page-walk loops).

Wheels carry the compiled module, the Python package and its JSON Schemas; not the C file
Cython generates (pyproject: exclude-package-data; MANIFEST.in keeps it out of the sdist too).
The benchmark harness is not part of the package: it lives in the checkout (``bench/``) and
measures the installed ``emu``.
"""
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "emu._fast",
        ["emu/_fast.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
)
