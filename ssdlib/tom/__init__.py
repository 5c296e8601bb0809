"""Theory of Mind as intrinsic motivation (Oguntola et al. 2023) in physical deception.

One concept per module: `config` and `presets` (what a run trains), `networks` (the agents),
`beliefs` (first- and second-order beliefs, the ToM reward), `club` (the mutual-information
bound between belief and residual), `ppo` (PPO's equations), `train` (the training loop and
its command), `replay` and `feinting` (trained agents played back, and what they do), `table`
(the paper's results table beside ours).
"""
