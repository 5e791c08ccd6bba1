/* vramcore/openmp_shim.h -- OpenMP is optional at build time. */
#pragma once

#ifdef _OPENMP
#include <omp.h>
static inline int vc_openmp_enabled(void) { return 1; }
static inline int vc_max_threads(void) { return omp_get_max_threads(); }
#else
static inline int vc_openmp_enabled(void) { return 0; }
static inline int vc_max_threads(void) { return 1; }
#endif
