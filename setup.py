"""Build script: compiles emu/_fast.pyx (the table-writing and page-walk loops).

Wheels carry the compiled module, the Python package and its JSON Schemas; not the C file
Cython generates (pyproject: exclude-package-data) and not the benchmark harness
(``emu/tools/bench.py``: the performance figures are measured from a checkout, bench/).
"""
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

#: modules a wheel leaves out: (package, module)
NOT_SHIPPED = {("emu.tools", "bench")}


class BuildPy(build_py):
    """``build_py`` without :data:`NOT_SHIPPED`."""

    def find_package_modules(self, package, package_dir):
        return [m for m in super().find_package_modules(package, package_dir) if (m[0], m[1]) not in NOT_SHIPPED]


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
    cmdclass={"build_py": BuildPy},
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
