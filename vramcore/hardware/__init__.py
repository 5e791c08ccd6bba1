"""The GPUs results are checked against: :mod:`.gpus` and its catalog, ``data/gpus.json``."""
