"""A function of tensors replayed as one CUDA graph: captured once, then one launch per call.

An env step of acting launches some 440 small kernels (590 with influence); on a GPU the host's
launch time, not the device, bounds that. `CapturedStep(fn)` records fn's kernels once into a
CUDA graph that reads fixed input buffers and writes fixed output buffers; each call copies
its arguments into the input buffers, replays the graph and returns copies of the outputs.

What fn may depend on: its arguments (tensors in nested tuples, NamedTuples, lists, dicts, or
None), tensors whose storage never moves (the network's parameters, which the optimiser
updates in place) and the random generators named at construction, whose states advance on
every replay as in eager mode. It must not synchronise with the host, and its Python control
flow must not depend on values that change between calls (it is recorded once).

On other devices the same path runs eagerly: arguments copied into the input buffers, fn
called on them, outputs copied. The tests run it so on the CPU, which checks the plumbing and
that fn depends on nothing but the above.
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils import _pytree as pytree

from ..envs.actions import check_actions
from ..envs.grid import GridGame, GridState, Observation

WARMUP_CALLS = 2  # eager calls on a side stream before capture (lazy initialisation, allocator)


class CapturedStep:
    def __init__(self, fn: Callable[..., Any], generators: list[torch.Generator]) -> None:
        self.fn, self.generators = fn, list(generators)
        self.inputs: list[Any] | None = None  # the fixed input buffers (and constant leaves), flattened
        self.spec: pytree.TreeSpec | None = None
        self.outputs: Any = None  # the graph's fixed outputs (CUDA)
        self.graph: "torch.cuda.CUDAGraph | None" = None

    def __call__(self, *args: Any) -> Any:
        leaves, spec = pytree.tree_flatten(args)
        if self.inputs is None:
            self.inputs = [x.clone() if isinstance(x, torch.Tensor) else x for x in leaves]
            self.spec = spec
        elif spec != self.spec or any(not same_kind(x, s) for x, s in zip(leaves, self.inputs)):
            raise ValueError("a captured step must be called with arguments of the structure, shapes and dtypes "
                             f"it was captured with: {self.spec}, got {spec}")
        for buffer, x in zip(self.inputs, leaves):
            if isinstance(x, torch.Tensor):
                buffer.copy_(x)
        static = pytree.tree_unflatten(self.inputs, self.spec)
        if not any(isinstance(x, torch.Tensor) and x.device.type == "cuda" for x in self.inputs):
            return copied(self.fn(*static))
        if self.graph is None:
            self._capture(static)
        self.graph.replay()
        return copied(self.outputs)

    def _capture(self, static: tuple) -> None:
        """Warm up on a side stream, with the generators' states put back afterwards (the
        warm-up's draws are not part of the run), then record one call."""
        states = [g.get_state() for g in self.generators]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                self.fn(*static)
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        for g, state in zip(self.generators, states):
            g.set_state(state)
        graph = torch.cuda.CUDAGraph()
        if self.generators and not hasattr(graph, "register_generator_state"):
            raise RuntimeError(f"torch {torch.__version__} cannot replay a user generator in a CUDA graph "
                               "(CUDAGraph.register_generator_state is missing); train without capture")
        for g in self.generators:
            graph.register_generator_state(g)
        with torch.cuda.graph(graph):
            self.outputs = self.fn(*static)
        self.graph = graph


def same_kind(x: Any, buffer: Any) -> bool:
    """Whether argument leaf `x` fits the captured leaf: a tensor of its shape and dtype, or an
    equal constant (None, a number)."""
    if isinstance(buffer, torch.Tensor):
        return isinstance(x, torch.Tensor) and x.shape == buffer.shape and x.dtype == buffer.dtype
    return not isinstance(x, torch.Tensor) and x == buffer


def copied(tree: Any) -> Any:
    """The tensors of `tree` cloned (the graph overwrites its outputs at the next replay)."""
    return pytree.tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, tree)


class CapturedEnv:
    """A grid game whose steps run their device part (`GridGame.advance` and the observation)
    as one replayed CUDA graph (`CapturedStep`): some 580 small kernels a step otherwise, each
    launched by the host. The host part stays eager: the action check, the step counter, and
    the step that reaches the horizon, which resets every game (another sequence of kernels)
    and runs as a plain `GridGame.step`. The games' generator advances on every replay as in
    eager mode. A captured step cannot branch on device values, so the env's `branch_on_host`
    is switched off (Cleanup casts its cleaning beams in order: the same results). Off CUDA
    the same path runs eagerly through the same buffers, which the tests check."""

    def __init__(self, env: GridGame) -> None:
        if not isinstance(env, GridGame):
            raise ValueError(f"only grid games can be captured, not {type(env).__name__}")
        env.branch_on_host = False
        self.env = env
        self._device_step = CapturedStep(self._advance, [env._generator])

    def _advance(self, state: dict[str, Tensor | None], actions: Tensor
                 ) -> tuple[dict[str, Tensor | None], Observation, Tensor, dict]:
        """One step's device part from the state's tensors (copied first: a capture's warm-up
        calls must leave its input buffers as they were) and checked actions."""
        env = self.env
        env.state = GridState(**{name: None if x is None else x.clone() for name, x in state.items()})
        rewards, info = env.advance(actions)
        return env.state.by_name(), env.observe(), rewards, info

    def step(self, actions: Tensor, check_range: bool = True) -> tuple[Observation, Tensor, Tensor, dict]:
        """As `GridGame.step`."""
        env = self.env
        a = check_actions(actions, env.num_envs, env.num_agents, env.num_actions, env.device, env.name, check_range)
        if env.t + 1 >= env.horizon:  # this step resets the games
            return env.step(a, check_range=False)
        state, obs, rewards, info = self._device_step(env.state.by_name(), a)
        env.state = GridState(**state)
        return obs, rewards, env.count_step(), info
