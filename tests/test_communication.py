"""Influential communication (paper section 5): every agent hears every agent's symbol of the
previous step (embedded, own first) and says a symbol with its communication head (π_m, V_m).
Speaker k's symbol m^k_{t−1} is rewarded with its influence on the listeners' actions:

    c^k_t = Σ_{j≠k} D[p(a^j_t | m^k_{t−1}, s^j_t) ‖ Σ_m̃ p(a^j_t | m̃, s^j_t) p(m̃ | s^k_{t−1})],

listener j's own policy under every symbol m̃ in k's slot, marginalised over k's
communication policy when it spoke; credited to the step that said the symbol.

These tests recompute the influence by brute force (a float64 copy of the networks rerun once
per counterfactual symbol), check its exact zeros (episode starts, a listener deaf to one
speaker), where the influence is credited in a rollout and what the environment policy trains
on, the baseline's rewards, that a run resumes bit for bit, that the communication head and
the embeddings learn, the config checks and the listening diagnostic. Everything runs on the
smoke preset (shorter rollouts), one or two seeds.
"""

import copy
import dataclasses
import math

import pytest
import torch

from ssdlib.agents import LSTMState, Memory
from ssdlib.influence import curriculum_weight
from ssdlib.training.conditions import config_from_dict, load_config
from ssdlib.training.conditions.presets import get_preset
from ssdlib.training.influence_sources import CommunicationInfluence
from ssdlib.training.state import CHECKPOINT_FORMAT, load_checkpoint
from ssdlib.training.trainer import Evaluation, Trainer

SMOKE = get_preset("smoke")  # 4 games per seed, horizon 100


# ---------------------------------------------------------------------- helpers
def comm_config(name: str = "cleanup_comm_influence", rollout_length: int = 25, **reward):
    """A packaged communication config with a shorter rollout (and reward fields replaced)."""
    data = load_config(name).to_dict()
    data["optim"]["rollout_length"] = rollout_length
    data["reward"].update(reward)
    return config_from_dict(data)


def comm_trainer(name: str = "cleanup_comm_influence", seeds=(0,), rollout_length: int = 25, **reward) -> Trainer:
    return Trainer(comm_config(name, rollout_length, **reward), SMOKE, list(seeds), "cpu")


def others_of(i: int, n: int) -> list[int]:
    return [x for x in range(n) if x != i]


def double_memory(memory: Memory) -> Memory:
    return Memory(LSTMState(memory.policy.h.double(), memory.policy.c.double()), None, memory.heard,
                  memory.spoken_logp)


def kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return (p * (p.log() - q.log())).sum()


@torch.no_grad()
def brute_force_comm_influence(tr: Trainer, net, obs, memory: Memory) -> torch.Tensor:
    """pairs [B, k, jj] float64 (jj: k's others in index order): every policy rerun from
    scratch (`policy_step`) with the symbol in one speaker slot replaced by each symbol m̃,
    softmaxes in float64; for speaker k and listener j the conditional is j's policy under
    what it heard, the marginal Σ_m̃ π^k_m(m̃) p(a^j | m̃ in k's slot of j), π^k_m from the
    speaker's stored `spoken_logp`. Scalar loops over games, speakers and listeners."""
    lay, n, vocabulary = tr.layout, tr.N, net.vocabulary
    features = net.core.features(net.conv(lay.to_models(obs.image)))
    logits, _, _ = net.policy_step(features, None, memory.policy, memory.heard)
    conditional = lay.to_games(torch.softmax(logits.double(), -1))  # [B, N, A]
    counterfactual = {}
    for slot in range(1, n):
        rows = []
        for symbol in range(vocabulary):
            heard = memory.heard.clone()
            heard[:, :, slot] = symbol
            logits, _, _ = net.policy_step(features, None, memory.policy, heard)
            rows.append(lay.to_games(torch.softmax(logits.double(), -1)))
        counterfactual[slot] = torch.stack(rows, 2)  # [B, N (listener), m̃, A]
    speaker = lay.to_games(memory.spoken_logp.exp())  # [B, N, V]
    heard = lay.to_games(memory.heard)  # [B, N (listener), N (slot)]
    pairs = torch.zeros(heard.shape[0], n, n - 1, dtype=torch.float64)
    for b in range(heard.shape[0]):
        for k in range(n):
            for jj, j in enumerate(others_of(k, n)):
                slot = 1 + others_of(j, n).index(k)  # listener j: own symbol first, then the others in order
                assert heard[b, j, slot] == heard[b, k, 0]  # j heard in that slot what k said
                marginal = sum(speaker[b, k, m] * counterfactual[slot][b, j, m] for m in range(vocabulary))
                pairs[b, k, jj] = kl(conditional[b, j], marginal)
    return pairs


def trained_and_playing(seeds=(0, 3), steps: int = 3) -> Trainer:
    """A smoke trainer after one iteration (one update) and a few steps played, so that the
    symbols heard are real ones, not the episode-start silence."""
    tr = comm_trainer(seeds=seeds)
    tr.train_iteration()
    for _ in range(steps):
        tr.play()
    assert (tr.state.memory.heard != 0).any()  # not silence
    return tr


# ---------------------------------------------------------------------- 1. brute force
def test_communication_influence_matches_brute_force():
    tr = trained_and_playing()
    assert isinstance(tr.influence_source, CommunicationInfluence)
    obs, memory = tr.state.obs, tr.state.memory
    out = tr.act(obs, memory)
    influence = out.influence
    assert influence.reward.dtype == influence.pairs.dtype == torch.float64
    assert influence.pairs.shape == (tr.S * tr.E, tr.N, tr.N - 1)
    assert torch.equal(influence.reward, influence.pairs.sum(-1))
    assert torch.equal(influence.nonnegative, influence.pairs)  # KL
    # the trainer as it runs (float32 networks, float64 divergences) against a float64 rerun
    net64 = copy.deepcopy(tr.net).double()
    pairs = brute_force_comm_influence(tr, net64, obs, double_memory(memory))
    assert (pairs > 0).all()
    assert pairs.std() > 0.1 * pairs.mean()  # varies across pairs: a slot or speaker mix-up would show
    assert ((influence.pairs - pairs).abs() / pairs).max() < 1e-5
    # the same float64 networks in the trainer: equal up to the brute force's own rounding
    # (its direct KL of near-identical distributions keeps ~9 digits of a 1e-7 divergence)
    tr.net.double()
    out64 = tr.act(obs, double_memory(memory))
    assert ((out64.influence.pairs - pairs).abs() / pairs).max() < 1e-7


# ---------------------------------------------------------------------- 2. exact zeros
def test_influence_exactly_zero_at_episode_start():
    tr = trained_and_playing(seeds=(1,))
    memory = tr.state.memory
    # a fresh episode: the initial memory hears silence, spoken with certainty
    initial = tr.net.initial_memory(tr.E)
    assert torch.equal(initial.heard, torch.zeros_like(initial.heard))
    out = tr.act(tr.state.obs, initial)
    assert torch.equal(out.influence.pairs, torch.zeros_like(out.influence.pairs))
    assert torch.equal(out.influence.reward, torch.zeros_like(out.influence.reward))
    # games that ended (live = 0) start again from silence; the others keep their influence
    live = torch.ones(tr.layout.models, tr.E, 1)
    live[:, 1] = 0.0
    masked = memory.masked(live)
    assert torch.equal(masked.heard[:, 1], torch.zeros_like(masked.heard[:, 1]))
    assert torch.equal(masked.spoken_logp[:, 1, 0], torch.zeros(tr.layout.models, dtype=torch.float64))
    assert torch.isneginf(masked.spoken_logp[:, 1, 1:]).all()
    pairs = tr.act(tr.state.obs, masked).influence.pairs  # [B, k, jj], game b = seed * E + e
    assert torch.equal(pairs[1], torch.zeros_like(pairs[1]))
    kept = [b for b in range(tr.S * tr.E) if b % tr.E != 1]
    assert (pairs[kept] > 0).all()


def test_listener_deaf_to_one_speaker_gets_exactly_zero_influence_from_it():
    tr = trained_and_playing(seeds=(0, 3))
    obs, memory = tr.state.obs, tr.state.memory
    before = tr.act(obs, memory).influence.pairs
    assert (before > 0).all()
    n, speaker, listener = tr.N, 3, 1
    slot = 1 + others_of(listener, n).index(speaker)
    core = tr.net.core
    with torch.no_grad():
        for seed in range(tr.S):  # listener 1 of every seed ignores speaker 3's symbol
            core.lstm_wx[seed * n + listener, core.message_rows(slot)] = 0.0
    assert torch.equal(core.symbol_rows(slot)[listener], torch.zeros_like(core.symbol_rows(slot)[listener]))
    after = tr.act(obs, memory).influence
    jj = others_of(speaker, n).index(listener)
    assert torch.equal(after.pairs[:, speaker, jj], torch.zeros_like(after.pairs[:, speaker, jj]))
    # every other listener's pairs are bit for bit unchanged; listener 1 still hears the others
    for k in range(n):
        for i, j in enumerate(others_of(k, n)):
            if j != listener:
                assert torch.equal(after.pairs[:, k, i], before[:, k, i]), (k, j)
            elif k != speaker:
                assert (after.pairs[:, k, i] > 0).all(), (k, j)
    assert torch.equal(after.reward, after.pairs.sum(-1))


# ---------------------------------------------------------------------- 3. credit in a rollout
def record_rollout(tr: Trainer):
    """collect() with every act's influence and every env step's extrinsic reward recorded."""
    acts, extrinsic = [], []
    real_act, real_step = tr.act, tr.state.env.step

    def act(obs, memory, with_influence=True, keep_graph=False):
        out = real_act(obs, memory, with_influence, keep_graph)
        acts.append(out)
        return out

    def step(actions, check_range=True):
        result = real_step(actions, check_range)
        extrinsic.append(result[1].clone())
        return result

    tr.act, tr.state.env.step = act, step
    try:
        batch = tr.collect()
    finally:
        del tr.act
        tr.state.env.step = real_step
    return batch, acts, extrinsic


@pytest.mark.parametrize("name", ["cleanup_comm_influence", "harvest_comm_influence"])
def test_message_reward_credited_to_the_step_that_said_the_symbol(name):
    """message_reward[t] = α e_t + β c_{t+1}: the influence `act` computed at step t + 1 (the
    rollout's last step: the final act's), with no curriculum; the environment policy trains
    on the extrinsic reward alone."""
    tr = comm_trainer(name, seeds=(2,), rollout_length=12, curriculum_steps=0.0)
    tr.train_iteration()  # past the episode's silent first step, trained once
    recorded = tr.state.stats.influence.clone()
    batch, acts, extrinsic = record_rollout(tr)
    for out in acts[:-1]:
        recorded += out.influence.reward
    steps, lay, t_len = batch.steps, tr.layout, 12
    assert len(acts) == t_len + 1 and len(extrinsic) == t_len
    alpha, beta = tr.config.reward.extrinsic_weight, tr.config.reward.influence_weight
    assert alpha == (0.0 if name.startswith("cleanup") else 1.0)
    assert all(a.influence is not None for a in acts)  # the final act computes it too
    for t in range(t_len):
        assert torch.equal(steps.reward[t], lay.to_models(extrinsic[t]))
        c = acts[t + 1].influence.reward
        expected = (alpha * extrinsic[t].double() + beta * c).float()
        assert torch.equal(steps.message_reward[t], lay.to_models(expected)), t
        # an off-by-one would show: the influence moves from step to step
        assert not torch.equal(steps.message_reward[t], lay.to_models((alpha * extrinsic[t].double()
                                                                        + beta * acts[t].influence.reward).float()))
    assert steps.message_reward.abs().max() > 0
    # the episode statistics record at step t the influence `act` computed then (that of the
    # symbols of t − 1), each once: the final act's is recorded by the next rollout
    assert torch.equal(tr.state.stats.influence, recorded)
    if alpha == 1.0:
        assert any(e.abs().sum() > 0 for e in extrinsic)  # the α e term was exercised
    # the symbols heard at t + 1 are those said at t, own first
    n = tr.N
    for t in range(t_len - 1):
        said = lay.to_games(steps.message[t])
        heard = lay.to_games(steps.heard[t + 1])
        for j in range(n):
            assert torch.equal(heard[:, j], said[:, [j, *others_of(j, n)]])


def test_last_symbols_influence_is_the_next_steps_influence():
    """The influence credited to a rollout's last symbols (the final act's) is the one the
    next rollout records for them at its first step, when no update intervenes (KL does not
    depend on the listeners' sampled actions)."""
    tr = comm_trainer(seeds=(1,), rollout_length=10)
    _, first, _ = record_rollout(tr)
    _, second, _ = record_rollout(tr)
    assert torch.equal(first[-1].influence.pairs, second[0].influence.pairs)
    assert (first[-1].influence.pairs > 0).all()


def test_communication_refuses_pmi():
    """PMI depends on the listeners' taken actions, and the influence of a rollout's last
    symbols is computed at actions sampled for the bootstrap step, not the ones then played:
    communication takes KL or JSD only."""
    data = with_changes("cleanup_comm_influence", reward={"divergence": "pmi"}, optim={"rollout_length": 10})
    with pytest.raises(ValueError, match="reward.divergence"):
        config_from_dict(data)


def test_curriculum_weight_of_message_reward_follows_one_rule():
    """With a curriculum, every step's symbols are credited β w(·) c with w taken at the same
    point relative to the step: here the env steps counted through the step that said them
    (as the other influence sources weigh the reward of the step they credit)."""
    tr = comm_trainer("cleanup_comm_influence", seeds=(0,), rollout_length=8, curriculum_steps=1e9)
    start = tr.env_steps
    batch, acts, extrinsic = record_rollout(tr)
    beta, lay = tr.config.reward.influence_weight, tr.layout
    assert 0 < curriculum_weight(start + 8 * tr.E, tr.curriculum_steps) < 1
    scales = []
    for t in range(8):
        c = acts[t + 1].influence.reward  # α = 0: the message reward is β w c alone
        got = lay.to_games(batch.steps.message_reward[t]).double()
        assert (c > 0).all()
        scales.append(float((got / c).median()))
    expected = [beta * curriculum_weight(start + (t + 1) * tr.E, tr.curriculum_steps) for t in range(8)]
    assert scales == pytest.approx(expected, rel=1e-4)


# ---------------------------------------------------------------------- 4. the baseline
def test_comm_baseline_trains_communication_on_extrinsic_reward():
    tr = comm_trainer("harvest_comm_baseline", seeds=(0,), rollout_length=12)
    assert tr.influence_source is None and tr.net.communicates
    batch, acts, extrinsic = record_rollout(tr)
    steps = batch.steps
    assert all(a.influence is None for a in acts)
    assert torch.equal(steps.message_reward, steps.reward)
    assert torch.equal(steps.reward, torch.stack([tr.layout.to_models(e) for e in extrinsic]))
    assert steps.message.shape == steps.actions.shape and steps.message.max() < tr.net.vocabulary


# ---------------------------------------------------------------------- 5. resume bit for bit
def outcome(tr: Trainer) -> dict:
    data = tr.state.checkpoint()
    data["episodes"] = [{k: v for k, v in row.items() if k != "wall_time"} for row in data["episodes"]]
    del data["wall_time"]
    return data


def assert_same(a, b, where: str = "checkpoint") -> None:
    """Exact equality of nested checkpoints (tensors bit for bit, dtypes included)."""
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_communication_run_resumes_bit_for_bit(tmp_path):
    """2 iterations, a checkpoint saved through torch.save, 2 more (an episode ends in the 4th):
    a fresh trainer restored from the file (load_checkpoint, weights_only) continues
    identically: every parameter, the optimiser, memory (symbols heard, spoken log-policies)
    and the episodes' rows."""
    path = tmp_path / "checkpoint.pt"
    reference = comm_trainer(seeds=(0, 3))
    for _ in range(2):
        reference.train_iteration()
    torch.save(reference.state.checkpoint(), path)
    for _ in range(2):
        reference.train_iteration()
    expected = outcome(reference)
    assert len(expected["episodes"]) == 2  # one episode of 100 steps per seed
    row = expected["episodes"][0]
    assert row["loss_comm_policy"] != 0.0 and row["listening"] != row["listening_init"]

    saved = load_checkpoint(path)
    assert saved["format"] == CHECKPOINT_FORMAT
    assert saved["memory"]["heard"].dtype == torch.long and (saved["memory"]["heard"] != 0).any()
    assert saved["memory"]["spoken_logp"].dtype == torch.float64
    fresh = comm_trainer(seeds=(0, 3))
    fresh.state.restore(saved)
    torch.manual_seed(999)  # the global RNG plays no part
    for _ in range(2):
        fresh.train_iteration()
    got = outcome(fresh)
    assert_same(got, expected)
    assert any(name.startswith("comm_head.") for name in got["net"]) and "core.message_embedding" in got["net"]

    # not vacuous: restored with the symbols heard replaced by silence, the run goes elsewhere
    deaf = comm_trainer(seeds=(0, 3))
    deaf.state.restore(load_checkpoint(path))
    memory = deaf.state.memory
    silent = memory.masked(torch.zeros(deaf.layout.models, deaf.E, 1))
    deaf.state.memory = silent._replace(policy=memory.policy)  # the LSTM state kept
    for _ in range(2):
        deaf.train_iteration()
    assert not torch.equal(outcome(deaf)["net"]["comm_head.pi_w"], expected["net"]["comm_head.pi_w"])


# ---------------------------------------------------------------------- 6. gradients
def test_update_trains_message_embedding_and_comm_head():
    tr = comm_trainer("harvest_comm_baseline", seeds=(0,), rollout_length=50)
    vocabulary = tr.net.vocabulary
    before = {name: p.detach().clone() for name, p in tr.net.named_parameters()}
    batch = tr.collect()._replace(evaluation=None)  # each loss below re-evaluates the rollout
    # evaluate reruns the networks over the rollout: the communication head as when acting
    with torch.no_grad():
        evaluation = tr.evaluate(batch)
    assert isinstance(evaluation, Evaluation)
    assert evaluation.message_logits.shape == (*batch.steps.message.shape, vocabulary)
    logp = torch.log_softmax(evaluation.message_logits, -1).gather(-1, batch.steps.message[..., None])[..., 0]
    torch.testing.assert_close(logp, batch.steps.message_logp, rtol=0, atol=1e-5)
    torch.testing.assert_close(evaluation.message_values, batch.steps.message_value, rtol=0, atol=1e-5)

    # the comm loss weighs the communication head's gradient, and only it reaches that head
    def gradients(weight: float) -> dict[str, torch.Tensor]:
        tr.config = dataclasses.replace(tr.config, optim=dataclasses.replace(tr.config.optim, comm_loss_weight=weight))
        tr.net.zero_grad(set_to_none=True)
        zeros = torch.zeros_like(batch.steps.value)
        loss, _ = tr.loss(batch, zeros + 1.0, zeros, slice(None), (zeros + 1.0, zeros))
        loss.backward()
        return {name: p.grad.clone() for name, p in tr.net.named_parameters()}

    weight = tr.config.optim.comm_loss_weight
    once, twice, none = gradients(weight), gradients(2 * weight), gradients(0.0)
    tr.config = dataclasses.replace(tr.config, optim=dataclasses.replace(tr.config.optim, comm_loss_weight=weight))
    for name in ("comm_head.pi_w", "comm_head.pi_b", "comm_head.v_w", "comm_head.v_b"):
        assert torch.equal(twice[name], 2 * once[name]) and once[name].abs().max() > 0, name
        assert torch.equal(none[name], torch.zeros_like(none[name])), name
    for name in ("head.pi_w", "head.v_w"):
        assert torch.equal(once[name], none[name]), name
    assert not torch.equal(once["core.message_embedding"], none["core.message_embedding"])
    tr.net.zero_grad(set_to_none=True)

    terms = tr.update(batch)
    after = dict(tr.net.named_parameters())
    for name in ("core.message_embedding", "comm_head.pi_w", "comm_head.pi_b", "comm_head.v_w", "comm_head.v_b"):
        changed = (after[name] != before[name]).flatten(1).any(1)
        assert changed.all(), name  # every copy (agent) learns its own
    for name in ("comm_policy", "comm_value", "comm_entropy"):
        assert terms[name].shape == (tr.layout.models,)
    # the communication policy starts near uniform
    assert (terms["comm_entropy"] - math.log(vocabulary)).abs().max() < 1e-3

    tr.train_iteration()  # the episode (100 steps) ends in this rollout, after the first update
    (row,) = tr.episodes
    for name in ("loss_comm_policy", "loss_comm_value", "loss_comm_entropy", "loss_policy"):
        assert name in row and math.isfinite(row[name]), name
    assert abs(row["loss_comm_entropy"] - math.log(vocabulary)) < 1e-2


# ---------------------------------------------------------------------- 7. config errors
def with_changes(name: str, **sections) -> dict:
    data = load_config(name).to_dict()
    for section, values in sections.items():
        data[section].update(values)
    return data


@pytest.mark.parametrize("data, field", [
    (with_changes("cleanup_comm_influence", model={"vocabulary": 1}), "model.vocabulary"),
    (with_changes("cleanup_comm_influence", model={"vocabulary": -3}), "model.vocabulary"),
    (with_changes("cleanup_comm_baseline", model={"vocabulary": 9, "message_embedding": 0}),
     "model.message_embedding"),
    (with_changes("cleanup_comm_baseline", model={"influencers": 1, "action_inputs": True}), "model.influencers"),
    (with_changes("cleanup_comm_baseline", model={"moa": True, "action_inputs": True},
                  optim={"moa_loss_weight": 1.0}), "model.moa"),
    (with_changes("cleanup_comm_baseline", reward={"scheme": "prosocial", "prosocial_eta": 0.1}), "reward.scheme"),
    (with_changes("cleanup_comm_influence", model={"vocabulary": 0, "message_embedding": 0},
                  optim={"comm_loss_weight": 0.0, "comm_entropy_coef": 0.0}), "reward.influence_source"),
    (with_changes("cleanup_comm_influence", optim={"comm_loss_weight": 0.0}), "optim.comm_loss_weight"),
    (with_changes("cleanup_comm_influence", optim={"comm_entropy_coef": -0.1}), "optim.comm_entropy_coef"),
    (with_changes("cleanup_a3c", model={"message_embedding": 8}), "model.message_embedding"),
    (with_changes("cleanup_a3c", optim={"comm_loss_weight": 0.1}), "optim.comm_loss_weight"),
    (with_changes("cleanup_a3c", optim={"comm_entropy_coef": 0.1}), "optim.comm_entropy_coef"),
], ids=["vocabulary_1", "vocabulary_negative", "no_embedding", "influencers", "moa", "prosocial",
        "source_without_vocabulary", "no_comm_loss", "negative_comm_entropy", "embedding_without_vocabulary",
        "comm_loss_without_vocabulary", "comm_entropy_without_vocabulary"])
def test_communication_config_errors_name_the_field(data, field):
    with pytest.raises(ValueError, match=f"config field '{field}'"):
        config_from_dict(data)


def test_communication_configs_load():
    """The four Experiment II conditions (Table 2), as packaged."""
    for name, vocabulary, embedding in (("cleanup_comm_influence", 9, 32), ("cleanup_comm_baseline", 9, 32),
                                        ("harvest_comm_influence", 7, 16), ("harvest_comm_baseline", 7, 16)):
        c = load_config(name)
        assert (c.model.vocabulary, c.model.message_embedding) == (vocabulary, embedding)
        assert c.model.influencers == 0 and not c.model.moa and not c.model.action_inputs
        assert c.optim.comm_loss_weight > 0
        if name.endswith("influence"):
            assert (c.reward.scheme, c.reward.influence_source, c.reward.divergence) == ("influence", "communication", "kl")
        else:
            assert c.reward.scheme == "extrinsic"
    assert load_config("cleanup_comm_influence").reward.extrinsic_weight == 0.0
    assert load_config("harvest_comm_influence").reward.extrinsic_weight == 1.0


def test_communicating_config_with_another_influence_source_names_the_source():
    data = with_changes("cleanup_comm_influence", reward={"influence_source": "centralised"})
    with pytest.raises(ValueError, match="config field 'reward.influence_source'"):
        config_from_dict(data)


# ---------------------------------------------------------------------- 8. listening
def test_listening_is_the_message_listening_per_seed():
    tr = comm_trainer("harvest_comm_influence", seeds=(0, 5))
    n, core = tr.N, tr.net.core

    def brute() -> torch.Tensor:
        """Per seed: the mean over its agents and their other-speaker slots of the Frobenius
        norm of (embedding @ slot weights) minus its mean over symbols."""
        values = []
        for seed in range(tr.S):
            norms = []
            for agent in range(n):
                m = seed * n + agent
                for slot in range(1, n):
                    rows = core.message_embedding[m].double() @ core.lstm_wx[m, core.message_rows(slot)].double()
                    norms.append((rows - rows.mean(0)).norm())
            values.append(torch.stack(norms).mean())
        return torch.stack(values)

    listening = tr.listening()
    assert listening.shape == (tr.S,)
    assert torch.equal(listening, core.message_listening(list(range(1, n))).view(tr.S, n).mean(1))
    torch.testing.assert_close(listening.double(), brute(), rtol=1e-5, atol=0)
    assert torch.equal(tr.state.listening_init, listening)
    # the own slot does not count; a deaf copy's slots count as 0
    with torch.no_grad():
        core.lstm_wx[:, core.message_rows(0)] *= 3.0
    assert torch.equal(tr.listening(), listening)
    with torch.no_grad():
        for slot in range(1, n):
            core.lstm_wx[0, core.message_rows(slot)] = 0.0  # seed 0, agent 0 hears nobody
    torch.testing.assert_close(tr.listening().double(), brute(), rtol=1e-5, atol=0)
    assert tr.listening()[0] < listening[0] and tr.listening()[1] == listening[1]
