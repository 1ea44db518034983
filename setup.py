"""Build the native core: every ``lakecore/_native/*.pyx`` becomes one C++ extension.

Compiler directives are set once here. ``LAKECORE_DEBUG=1`` turns Cython's checks back on
and builds with ``-O0 -g``. OpenMP is used when the compiler supports it; without it the
kernels run on one thread and give the same results.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from glob import glob
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("LAKECORE_DEBUG", "") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "cdivision": not DEBUG,
    "initializedcheck": DEBUG,
    "embedsignature": True,
}


def compiler_supports_openmp() -> bool:
    """Compile and link a tiny OpenMP program with the C++ compiler Python was built with."""
    if os.environ.get("LAKECORE_NO_OPENMP"):
        return False
    cxx = (sysconfig.get_config_var("CXX") or "c++").split()[0]
    if shutil.which(cxx) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "omp.cpp")
        src.write_text("#include <omp.h>\nint main(){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
        result = subprocess.run(
            [cxx, "-fopenmp", str(src), "-o", str(Path(tmp, "omp"))],
            capture_output=True,
        )
        return result.returncode == 0


OPENMP = compiler_supports_openmp()

compile_args = ["-std=c++17"]
link_args = []
if DEBUG:
    compile_args += ["-O0", "-g", "-UNDEBUG"]
    link_args += ["-g"]
else:
    compile_args += ["-O3"]
if OPENMP:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

extensions = [
    Extension(
        f"lakecore._native.{Path(path).stem}",
        [path],
        language="c++",
        include_dirs=[np.get_include(), "lakecore/_native"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for path in sorted(glob("lakecore/_native/*.pyx"))
]

print(f"lakecore build: debug={DEBUG} openmp={OPENMP}", file=sys.stderr)

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        force=DEBUG,
    ),
)
