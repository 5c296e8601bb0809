"""Agents: the paper's network, with one set of weights per agent and seed, built from parts."""

from .blocks import LSTMState
from .network import AgentNetworks, Memory

__all__ = ["AgentNetworks", "LSTMState", "Memory"]
