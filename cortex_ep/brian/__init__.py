"""The Brian2 engine: EP as NeuronGroups, Synapses and synapse code."""

from .engine import DEFAULT_TARGET, TARGETS, BrianEngine, Schedule, make_schedule

__all__ = ["BrianEngine", "DEFAULT_TARGET", "Schedule", "TARGETS", "make_schedule"]
