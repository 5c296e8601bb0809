"""Batched building blocks: M independent copies of a layer, one per seed and agent.

No weights are shared: copy m has its own tensors, stacked on a leading dim of size M, and
every layer is one batched op over all copies (a grouped convolution, batched matrix
products), never a Python loop over agents or seeds. Inputs are laid out [M, E, ...]: E games
per copy.

Initial weights are drawn from one generator per copy (`init`), block after block in the
order the network builds them, so a copy's initial weights do not depend on which other
copies share the batch, and adding a block after the others leaves their weights unchanged.
"""

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..envs.geometry import VIEW_SIZE
from ..envs.palette import PALETTE

CONV_CHANNELS = 6
CONV_OUT = VIEW_SIZE - 2
CONV_FEATURES = CONV_CHANNELS * CONV_OUT * CONV_OUT
FC_SIZES = (32, 32)
LSTM_SIZE = 128


def draw(init: list[torch.Generator], shape: tuple[int, ...], fan_in: int, scale: float = 1.0) -> nn.Parameter:
    """One parameter [M, *shape], copy m uniform in ±scale/sqrt(fan_in) from generator m."""
    bound = fan_in**-0.5 * scale
    return nn.Parameter(torch.stack([(torch.rand(shape, generator=g) * 2 - 1) * bound for g in init]))


def pick_rows(table: Tensor, index: Tensor) -> Tensor:
    """table[m, index[m, e]] for a table [M, X, W] and an int index [M, E]: [M, E, W].

    One `index_select` of whole rows from the flattened table: the same values as
    `table.gather(1, index[..., None].expand(-1, -1, W))`, which on CPU reads an index per
    element and runs about 10x slower (and keeps its autograd graph the same way)."""
    m, x, w = table.shape
    flat = index + torch.arange(m, device=index.device)[:, None] * x
    return table.reshape(m * x, w).index_select(0, flat.flatten()).view(*index.shape, w)


class LSTMState(NamedTuple):
    h: Tensor  # [M, E, LSTM_SIZE]
    c: Tensor

    def masked(self, live: Tensor) -> "LSTMState":
        """The state with games that ended (live = 0, [M, E, 1]) reset to zero."""
        return LSTMState(self.h * live, self.c * live)


class ConvEncoder(nn.Module):
    """Conv 3x3, stride 1, 6 channels, valid padding, ReLU on the 15x15 RGB view in [0, 1]."""

    def __init__(self, init: list[torch.Generator]) -> None:
        super().__init__()
        self.conv_w = draw(init, (CONV_CHANNELS, 3, 3, 3), 3 * 9)
        self.conv_b = draw(init, (CONV_CHANNELS,), 3 * 9)
        self.register_buffer("palette", PALETTE.float() / 255.0, persistent=False)

    def forward(self, image: Tensor) -> Tensor:
        """Palette images uint8 [M, E, 15, 15] -> conv features [M, E, 6*13*13] (any E, e.g. T*E).

        The grouped conv runs on a channels-last input, [E, 15, 15, M*3] in memory: the
        colour lookup writes it directly, and on CPU oneDNN's channels-last grouped conv is
        about 4x faster than on [E, M*3, 15, 15] (its outputs differ in the last float bits)."""
        m, e = image.shape[:2]
        rgb = F.embedding(image.permute(1, 2, 3, 0).long(), self.palette)  # [E, 15, 15, M, 3], in [0, 1]
        x = rgb.view(e, VIEW_SIZE, VIEW_SIZE, m * 3).permute(0, 3, 1, 2)  # [E, M*3, 15, 15], channels-last
        x = F.conv2d(x, self.conv_w.flatten(0, 1), self.conv_b.flatten(), groups=m)
        # features in (channel, row, column) order; the ReLU runs in place on that contiguous copy
        return F.relu_(x.reshape(e, m, -1)).transpose(0, 1)


class MessageInput(NamedTuple):
    """Symbols heard by the LSTM (paper section 5): `slots` speakers (every agent, own first),
    each symbol of a `vocabulary` embedded in `embedding` dims by one table per copy."""

    slots: int
    vocabulary: int
    embedding: int


class RecurrentCore(nn.Module):
    """FC 32 -> FC 32 (tanh, as the reference) -> LSTM 128.

    The LSTM input is the FC output followed by named one-hot action blocks (`blocks`: name ->
    number of action slots), e.g. {"others": N - 1}, and, with `messages`, the embedded symbols
    of every speaker. Both enter the gates linearly, so the gates under another action (or
    symbol) in one slot are a row swap (`counterfactual_h`, `counterfactual_message_h`),
    not recomputed.
    """

    def __init__(self, init: list[torch.Generator], num_actions: int, blocks: dict[str, int],
                 messages: MessageInput | None = None) -> None:
        super().__init__()
        self.num_actions, self.blocks, self.messages = num_actions, dict(blocks), messages
        self.fc1_w = draw(init, (CONV_FEATURES, FC_SIZES[0]), CONV_FEATURES)
        self.fc1_b = draw(init, (FC_SIZES[0],), CONV_FEATURES)
        self.fc2_w = draw(init, (FC_SIZES[0], FC_SIZES[1]), FC_SIZES[0])
        self.fc2_b = draw(init, (FC_SIZES[1],), FC_SIZES[0])
        self.actions_end = FC_SIZES[1] + sum(self.blocks.values()) * num_actions
        lstm_in = self.actions_end + (messages.slots * messages.embedding if messages else 0)
        self.lstm_wx = draw(init, (lstm_in, 4 * LSTM_SIZE), LSTM_SIZE)
        self.lstm_wh = draw(init, (LSTM_SIZE, 4 * LSTM_SIZE), LSTM_SIZE)
        self.lstm_b = draw(init, (4 * LSTM_SIZE,), LSTM_SIZE)
        # a symbol's embedding is uniform in ±1, on the scale of the one-hot action inputs
        self.message_embedding = draw(init, (messages.vocabulary, messages.embedding), 1) if messages else None

    def block_rows(self, block: str, slot: int) -> slice:
        """The rows of `lstm_wx` that the one-hot action in slot `slot` of `block` feeds."""
        if block not in self.blocks:
            raise ValueError(f"no input block {block!r}; this core has {list(self.blocks)}")
        if not 0 <= slot < self.blocks[block]:
            raise ValueError(f"slot {slot!r} is outside block {block!r} of {self.blocks[block]} actions")
        start = FC_SIZES[1]
        for name, slots in self.blocks.items():
            if name == block:
                break
            start += slots * self.num_actions
        start += slot * self.num_actions
        return slice(start, start + self.num_actions)

    def initial_state(self, num_games: int) -> LSTMState:
        zeros = torch.zeros(self.lstm_wh.shape[0], num_games, LSTM_SIZE, device=self.lstm_wh.device)
        return LSTMState(zeros, zeros.clone())

    def features(self, conv: Tensor) -> Tensor:
        """Conv features [M, E, 6*13*13] -> FC features [M, E, 32]."""
        x = torch.tanh(torch.baddbmm(self.fc1_b[:, None], conv, self.fc1_w))
        return torch.tanh(torch.baddbmm(self.fc2_b[:, None], x, self.fc2_w))

    def message_rows(self, slot: int) -> slice:
        """The rows of `lstm_wx` that the embedded symbol of speaker slot `slot` feeds."""
        if self.messages is None:
            raise ValueError("this core hears no messages")
        if not 0 <= slot < self.messages.slots:
            raise ValueError(f"message slot {slot!r} is outside 0..{self.messages.slots - 1}")
        start = self.actions_end + slot * self.messages.embedding
        return slice(start, start + self.messages.embedding)

    def embed(self, symbols: Tensor, models: Tensor | slice | None = None) -> Tensor:
        """Symbols int [M', E, slots] of the copies `models` (all by default) -> their
        embeddings, concatenated [M', E, slots * d]."""
        copies = torch.arange(self.message_embedding.shape[0], device=symbols.device)
        copies = (copies if models is None else copies[models])[:, None, None]
        return self.message_embedding[copies, symbols].flatten(-2)

    def gates(self, features: Tensor, actions: dict[str, Tensor], state: LSTMState,
              heard: Tensor | None = None, models: Tensor | slice | None = None) -> Tensor:
        """LSTM pre-activations [M', E, 4*128] of the copies `models` (all by default) from
        their FC features, action blocks (int [M', E, slots] each, in the core's block order),
        symbols heard (int [M', E, slots], with messages) and state. All copies use the
        parameters themselves (a view of them would add a copy to every step's backward)."""
        if set(actions) != set(self.blocks):
            raise ValueError(f"action blocks {sorted(actions)} given, the core takes {list(self.blocks)}")
        if (heard is None) != (self.messages is None):
            raise ValueError("symbols heard must be given exactly when the core has message inputs")
        one_hot = [F.one_hot(actions[name], self.num_actions).flatten(-2).float() for name in self.blocks]
        if heard is not None:
            one_hot.append(self.embed(heard, models))
        x = torch.cat([features, *one_hot], -1) if one_hot else features
        b, wx, wh = self.lstm_b, self.lstm_wx, self.lstm_wh
        if models is not None:
            b, wx, wh = b[models], wx[models], wh[models]
        g = torch.baddbmm(b[:, None], x, wx)
        return torch.baddbmm(g, state.h, wh)

    def counterfactual_h(self, gates: Tensor, actions: Tensor, block: str, slot: int, c: Tensor,
                         models: Tensor | slice = slice(None)) -> Tensor:
        """The LSTM output h' [M', E, A, H] under every action ã in `slot` of `block` (other
        inputs and the state unchanged), for the copies `models`: gates (g − W[a]) + W[ã]
        (`swapped_h`); `gates`, `actions` (int [M', E, slots] of that block) and the cell state
        c [M', E, H] are given for those copies only."""
        rows = self.lstm_wx[models, self.block_rows(block, slot)]  # [M', A, 4H]
        taken = pick_rows(rows, actions[:, :, slot])  # [M', E, 4H]
        return self.swapped_h(gates, taken, rows, c)

    def symbol_rows(self, slot: int, models: Tensor | slice = slice(None)) -> Tensor:
        """What each symbol in speaker slot `slot` adds to the gates, [M', V, 4H]: its
        embedding times the slot's input weights."""
        return torch.bmm(self.message_embedding[models], self.lstm_wx[models, self.message_rows(slot)])

    def counterfactual_message_h(self, gates: Tensor, heard: Tensor, slot: int, c: Tensor,
                                 models: Tensor | slice = slice(None)) -> Tensor:
        """The LSTM output h' [M', E, V, H] under every symbol m̃ in speaker slot `slot` (other
        inputs and the state unchanged); `gates`, `heard` (int [M', E, slots]) and c [M', E, H]
        are given for the copies `models` only."""
        rows = self.symbol_rows(slot, models)  # [M', V, 4H]
        taken = pick_rows(rows, heard[:, :, slot])  # [M', E, 4H]
        return self.swapped_h(gates, taken, rows, c)

    @staticmethod
    def swapped_h(gates: Tensor, taken: Tensor, rows: Tensor, c: Tensor) -> Tensor:
        """h' = σ(o) tanh(σ(f) c + σ(i) tanh(g)) under every row swap, [M', E, X, H], of the
        gates (g − taken) + rows[x], for gates and taken [M', E, 4H], rows [M', X, 4H] and the
        cell state c [M', E, H]: the same numbers as `cell` of the materialised [M', E, X, 4H]
        gates. Counterfactuals are measured, never differentiated, so everything runs in
        place: each gate's counterfactuals are written once, contiguous, and used at once (the
        forget gate's become the new cell state, the input and cell gates' are folded into it,
        the output gate's come last), so that at most three such tensors exist at a time."""
        base = (gates - taken)[:, :, None]  # [M', E, 1, 4H]
        b_i, b_f, b_g, b_o = base.chunk(4, -1)
        r_i, r_f, r_g, r_o = rows[:, None].chunk(4, -1)  # [M', 1, X, H]
        cell = torch.add(b_f, r_f).sigmoid_().mul_(c[:, :, None])
        cell.add_(torch.add(b_i, r_i).sigmoid_().mul_(torch.add(b_g, r_g).tanh_()))
        return torch.add(b_o, r_o).sigmoid_().mul_(cell.tanh_())

    @staticmethod
    def cell(gates: Tensor, c: Tensor) -> LSTMState:
        """The LSTM cell update from pre-activations [..., 4*128] (input, forget, cell, output
        gates): c' = σ(f) c + σ(i) tanh(g), h' = σ(o) tanh(c').

        Each gate is copied out contiguous first: on CPU, tanh and sigmoid of a strided view
        run up to 10x slower. Without autograd the updates run in place on those copies; a
        gate that is already contiguous (one copy, one game) is cloned, so that they never
        touch the caller's gates."""
        i, f, g, o = (x.clone() if x.is_contiguous() else x.contiguous() for x in gates.chunk(4, -1))
        if torch.is_grad_enabled():
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return LSTMState(torch.sigmoid(o) * torch.tanh(c), c)
        c = f.sigmoid_().mul_(c).add_(i.sigmoid_().mul_(g.tanh_()))
        return LSTMState(o.sigmoid_().mul_(torch.tanh(c)), c)

    def listening(self, block: str, slots: list[int]) -> Tensor:
        """How much each copy's gates depend on which action fills each slot, [M]: the
        Frobenius norm of the action-specific part of the slot's input weights (the rows minus
        their mean over actions), averaged over `slots`. It stays at its initial value when
        the copy ignores those agents' actions."""
        norms = []
        for slot in slots:
            rows = self.lstm_wx[:, self.block_rows(block, slot)].detach()  # [M, A, 4H]
            norms.append((rows - rows.mean(1, keepdim=True)).flatten(1).norm(dim=1))
        return torch.stack(norms).mean(0)

    def message_listening(self, slots: list[int]) -> Tensor:
        """As `listening`, for the symbols of speaker slots `slots`: the norm of what each
        symbol adds to the gates (`symbol_rows`) minus its mean over symbols, [M]."""
        norms = []
        for slot in slots:
            rows = self.symbol_rows(slot).detach()
            norms.append((rows - rows.mean(1, keepdim=True)).flatten(1).norm(dim=1))
        return torch.stack(norms).mean(0)


class PolicyValueHead(nn.Module):
    """Policy logits and value from the LSTM output (policy init scaled by 0.01: near uniform)."""

    def __init__(self, init: list[torch.Generator], num_actions: int) -> None:
        super().__init__()
        m = len(init)
        self.pi_w = draw(init, (LSTM_SIZE, num_actions), LSTM_SIZE, scale=0.01)
        self.v_w = draw(init, (LSTM_SIZE, 1), LSTM_SIZE)
        self.pi_b = nn.Parameter(torch.zeros(m, num_actions))
        self.v_b = nn.Parameter(torch.zeros(m, 1))

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Policy logits [M, E, A] and value [M, E] from LSTM outputs [M, E, 128]."""
        logits = torch.baddbmm(self.pi_b[:, None], h, self.pi_w)
        value = torch.baddbmm(self.v_b[:, None], h, self.v_w).squeeze(-1)
        return logits, value

    def logits(self, h: Tensor, models: Tensor | slice) -> Tensor:
        """Policy logits [M', E, A] of the copies `models` from their LSTM outputs [M', E, 128]."""
        return torch.baddbmm(self.pi_b[models, None], h, self.pi_w[models])


class MOAHead(nn.Module):
    """Model of other agents: logits of each of the N - 1 others' next actions, [M, E, N-1, A]."""

    def __init__(self, init: list[torch.Generator], num_actions: int, others: int) -> None:
        super().__init__()
        self.others, self.num_actions = others, num_actions
        self.w = draw(init, (LSTM_SIZE, others * num_actions), LSTM_SIZE)
        self.b = nn.Parameter(torch.zeros(len(init), others * num_actions))

    def forward(self, h: Tensor) -> Tensor:
        """[M, E, 128] (or [M, E, X, 128] for X counterfactuals) -> [M, E, (X,) N-1, A]."""
        m, lead = h.shape[0], h.shape[1:-1]
        out = torch.baddbmm(self.b[:, None], h.reshape(m, -1, LSTM_SIZE), self.w)
        return out.view(m, *lead, self.others, self.num_actions)
