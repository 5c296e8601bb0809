"""Agents: the paper's network, with one set of weights per agent and seed."""

from .network import AgentNetworks, LSTMState

__all__ = ["AgentNetworks", "LSTMState"]
