"""Build the compiled kernel (everything else is in pyproject.toml).

Environment switches:
  VRAMCORE_DEBUG=1     bounds checks and assertions back on, no optimisation
  VRAMCORE_OPENMP=0    build without OpenMP (the kernel then runs on one thread)
"""

import glob
import os
import subprocess
import sys
import sysconfig
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("VRAMCORE_DEBUG", "0") not in ("", "0")


def _openmp_flags() -> list[str]:
    """Return the OpenMP flag when the C compiler accepts it, else [] (OpenMP is optional)."""
    if os.environ.get("VRAMCORE_OPENMP", "1") in ("0", ""):
        return []
    if sys.platform == "win32":
        return ["/openmp"]
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.c")
        with open(path, "w") as fh:
            fh.write(src)
        try:
            subprocess.run([*cc.split(), "-fopenmp", path, "-o", os.path.join(tmp, "t")],
                           check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            print("vramcore: compiler has no OpenMP; building the single-threaded kernel")
            return []
    return ["-fopenmp"]


omp = _openmp_flags()
compile_args = (["-O0", "-g"] if DEBUG else ["-O3"]) if sys.platform != "win32" else []
directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "nonecheck": DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        "vramcore.grid._kernel",
        ["vramcore/grid/_kernel.pyx"],
        include_dirs=["include"],
        depends=sorted(glob.glob("include/vramcore/**/*.h", recursive=True)),
        extra_compile_args=compile_args + omp,
        extra_link_args=omp,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
