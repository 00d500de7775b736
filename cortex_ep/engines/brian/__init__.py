"""The Brian2 engine: EP as NeuronGroups, Synapses and synapse code.

Brian2 is imported on first use of the engine (importing it installs a signal
handler, which only the main thread may do), so that code running in worker
threads can still read :data:`TARGETS`.
"""

from .targets import DEFAULT_TARGET, TARGETS

__all__ = ["BrianEngine", "DEFAULT_TARGET", "Schedule", "TARGETS", "make_schedule"]


def __getattr__(name):
    if name in ("BrianEngine", "Schedule", "make_schedule"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(name)
