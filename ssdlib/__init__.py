"""ssdlib: batched sequential social dilemmas and social-influence agents.

A reproduction of Jaques et al. 2019, "Social Influence as Intrinsic Motivation for
Multi-Agent Deep Reinforcement Learning".
"""

__version__ = "0.1.0"
