"""CLUB, the contrastive log-ratio upper bound of mutual information (Cheng et al. 2020), which
keeps the residual z free of what the belief b already says.

A variational network q_θ(z|b) = N(z; μ_θ(b), diag σ²_θ(b)) learns the conditional of z given b
from (b, z) pairs of the agents (detached: it has its own optimiser, and the agents' losses do
not move it). The agents then minimise

    Î(b; z) = 1/M Σ_i [ log q_θ(z_i|b_i) - 1/M Σ_j log q_θ(z_j|b_i) ],

which bounds I(b; z) from above when q_θ is close to p(z|b): the pairs as they occur score
higher under q than the same beliefs matched with every residual of the batch. Its gradient
flows into b and z (through μ_θ and σ_θ, whose parameters are held fixed there).
"""

import math

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .networks import MLP, Linear


def gaussian_log_likelihood(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log q(z|b) = -1/2 Σ_d [ (z_d - μ_d)² / σ_d² + log σ_d² + log 2π ], summed over the last dim."""
    return -0.5 * ((z - mu) ** 2 / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


def q_loss(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """L_q = -1/M Σ_i log q_θ(z_i|b_i) per model (mean over dim 1): q's negative
    log-likelihood of the pairs as they occur, which its own optimiser minimises."""
    return -gaussian_log_likelihood(z, mu, logvar).mean(1)


def club_estimate(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """Î = 1/M Σ_i [ log q(z_i|b_i) - 1/M Σ_j log q(z_j|b_i) ] per model, over the M pairs of
    dim 1 (z, mu, logvar [models, M, D]; mu and logvar are q's outputs at b_i).

    The all-pairs term is summed in closed form rather than as an M x M matrix: for each i and
    d, 1/M Σ_j (z_jd - μ_id)² = Var_j(z_d) + (mean_j z_jd - μ_id)² (the variance over the batch,
    with 1/M). The normalising terms log σ² + log 2π are the same in both terms and cancel.
    """
    inv_var = (-logvar).exp()
    positive = -0.5 * ((z - mu) ** 2 * inv_var).sum(-1)
    mean, var = z.mean(1, keepdim=True), z.var(1, unbiased=False, keepdim=True)
    negative = -0.5 * ((var + (mean - mu) ** 2) * inv_var).sum(-1)
    return (positive - negative).mean(1)


class VariationalGaussian(nn.Module):
    """q_θ(z|b) for each of M models: a two-layer ReLU MLP of b (hidden units each, as in the
    authors' concept-residual code) with two linear heads, μ and log σ², the log-variance
    squashed by tanh into (-1, 1) as there. Their code has a separate MLP per head; one shared
    hidden stack halves the cost of q, which is evaluated twice per minibatch."""

    def __init__(self, inits: list[torch.Generator], belief_dim: int, residual_dim: int, hidden: int) -> None:
        super().__init__()
        self.hidden = MLP(inits, belief_dim, hidden, nn.ReLU())
        self.mu, self.logvar = Linear(inits, hidden, residual_dim, 1.0), Linear(inits, hidden, residual_dim, 1.0)

    def forward(self, belief: Tensor) -> tuple[Tensor, Tensor]:
        """belief [M, B, N] -> (μ, log σ²), each [M, B, residual_dim]."""
        h = self.hidden(belief)
        return self.mu(h), torch.tanh(self.logvar(h))

    def frozen(self, belief: Tensor) -> tuple[Tensor, Tensor]:
        """The same with θ held fixed: gradients reach `belief`, never θ."""
        params = {name: p.detach() for name, p in self.named_parameters()}
        return functional_call(self, params, (belief,))
