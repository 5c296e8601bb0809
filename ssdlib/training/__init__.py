"""Trainers on the batched env: rollouts, reward schemes, advantages, A2C and PPO updates."""
