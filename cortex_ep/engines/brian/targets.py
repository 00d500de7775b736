"""Brian2 code-generation targets (importable without importing Brian2)."""

TARGETS = ("cpp_standalone", "cython", "numpy")
DEFAULT_TARGET = "cpp_standalone"
