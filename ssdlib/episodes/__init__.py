"""Recorded episodes: a trained run's agents play fresh games, and every step is kept.

    from ssdlib.episodes.recording import ensure_episodes
    from ssdlib.episodes.analysis import high_influence_moments
    episodes = ensure_episodes("results/runs/cleanup_influence/cpu")
    moments = high_influence_moments(episodes, top=5)

- `format`: the `Episodes` record and its file (`episodes.npz`, versioned, compact).
- `recording`: `record_episodes` replays a run without learning; `ensure_episodes` caches the
  recording in the run folder, tied to the run's checkpoint, so the book and the explorer
  replay the same games.
- `analysis`: moments of high influence (the paper's Figures 2 and 14), influence sparsity,
  apples hidden from the influencee.

Drawing recorded steps is the book's business (`ssdlib.book.drawing`).
"""
