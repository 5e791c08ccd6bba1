"""The grid: specs -> packed rows (:mod:`.pack`) -> the compiled kernel (``_kernel``) -> results.

Argument resolution (:mod:`.resolve`) and checks (:mod:`.validation`) come
first; :mod:`.run` is the one forward path, wrapped by :func:`vramcore.sweep`
(:mod:`.sweep`) and :func:`vramcore.estimate` (:mod:`.estimate`);
:mod:`.solve` answers the inverse questions in the kernel; :mod:`.results`
holds what they return; :mod:`.reference` is the pure-Python oracle the
kernel is tested against.
"""
