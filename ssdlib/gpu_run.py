"""Turn short GPU slots into accumulated training runs, one prepared command per slot.

    PYTHONPATH=. python -m ssdlib.gpu_run --minutes 12 --out results/campaign

One invocation is one slot. It first writes benchmarks (OUT/bench/<UTC time>.jsonl: env steps/s
of Cleanup at a few sizes, whole training iterations of cleanup_a3c and cleanup_influence, with
the peak GPU memory per game and per seed on CUDA), then works down CAMPAIGN in order (acting
through a captured CUDA graph where the bench found that faster and error-free: `use_capture`,
recorded per slot), 5 seeds of a condition trained together in one Trainer (`ssdlib.train.train`) at the `campaign` preset.
A run trains in OUT/runs/CONDITION/ and saves its checkpoint every `checkpoint_seconds` and
before the slot ends: `train` stops when its next iteration (the longest of its last ones) and
a save would end past the deadline, a safety margin before `--minutes` runs out. The next
invocation with the same OUT continues that run exactly where it stopped (bit for bit on CPU),
then the next conditions. A finished run gets its recorded episodes (`ensure_episodes`, what
the explorer and the high-influence chapter read once the checkpoint is gone) and moves, with
its checkpoint, to RESULTS/CONDITION/PRESET (results/runs/CONDITION/campaign, where the book
reads it and where git ignores social-dilemma checkpoints). So what a later slot needs, and
what is committed after a slot, is OUT (campaign.json, the bench lines, the one run in progress
with its checkpoint) and the finished run folders. OUT/campaign.json records the campaign:
each run's state and env steps, and each slot's device, commit, wall time and speeds.

This module and what it runs import only torch, numpy, pandas, pyarrow and matplotlib (and the
standard library): it runs from a checkout with the repository on PYTHONPATH, nothing installed.
"""

import argparse
import json
import shutil
import sys
import time

_STARTED = time.monotonic()  # the slot's clock starts before torch is imported
from datetime import datetime, timezone
from pathlib import Path

import torch

from .bench import time_env, time_train
from .hardware import device_name, resolve_device
from .runs import git_commit, write_json
from .train import parse_seeds, resolved_config, train
from .training.conditions.config import load_config
from .training.conditions.presets import PRESETS, get_preset

# The campaign, in priority order: Experiment I's baseline and influence, Experiment III's
# MOA, then the other conditions of the two social dilemmas (last the PPO baseline).
CAMPAIGN = (
    "cleanup_a3c", "harvest_a3c", "cleanup_influence", "harvest_influence",
    "cleanup_moa_baseline", "cleanup_moa_influence", "harvest_moa_baseline", "harvest_moa_influence",
    "cleanup_visible", "harvest_visible", "cleanup_prosocial", "harvest_prosocial",
    "cleanup_inequity_aversion", "harvest_inequity_aversion",
    "cleanup_comm_baseline", "cleanup_comm_influence", "harvest_comm_baseline", "harvest_comm_influence",
    "cleanup_ppo",
)
CAMPAIGN_FILE = "campaign.json"
CAMPAIGN_FORMAT = 1
BENCH_CONFIGS = ("cleanup_a3c", "cleanup_influence")


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


# ---------------------------------------------------------------------- benchmarks
def run_bench(path: Path, device: str, preset_name: str, seeds: list[int], seconds: float) -> list[dict]:
    """Benchmarks as JSON lines appended to `path`, for about `seconds` (checked before each
    item; an item left out says so): env steps/s of Cleanup with 1 game, the games of one seed
    and those of all seeds, stepped eagerly and through the captured step (`CapturedEnv`);
    whole training iterations (one warm-up, one timed) of BENCH_CONFIGS
    with the preset's games per seed and all seeds (on CPU at most 16 games per seed), acting
    eagerly and acting through the captured CUDA graph (`capture`; eagerly through the same
    buffers off CUDA; a capture that fails leaves its error in its line). Below a
    minute the env steps and rollouts shrink in proportion. On CUDA each line has the peak GPU
    memory allocated (torch.cuda.max_memory_allocated) in all, per game and per seed."""
    preset = get_preset(preset_name, "cleanup")
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    end = time.monotonic() + seconds
    scale = min(1.0, seconds / 60.0)
    env_steps = max(5, round(100 * scale))
    rollout = None if scale >= 1.0 else max(5, round(100 * scale))
    train_games = preset.num_envs if cuda else min(preset.num_envs, 16)
    header = {"device": str(device), "device_name": device_name(dev), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "preset": preset.name, "time_utc": now_utc()}
    items: list[tuple[str, int | str, bool]] = [
        ("env", size, capture) for capture in (False, True)
        for size in sorted({1, preset.num_envs, preset.num_envs * len(seeds)})]
    items += [("train", name, capture) for capture in (False, True) for name in BENCH_CONFIGS]
    rows = []
    path.parent.mkdir(parents=True, exist_ok=True)
    for kind, what, capture in items:
        row = {"bench": kind, **header}
        if kind == "train":
            row["capture"] = capture
        if time.monotonic() >= end:
            row.update({"env" if kind == "env" else "config": what, "skipped": f"the bench's {seconds:.0f} s were spent"})
        else:
            if cuda:
                torch.cuda.synchronize(dev)
                torch.cuda.reset_peak_memory_stats(dev)
            if kind == "env":
                row.update(time_env("cleanup", what, env_steps, device, None, capture=capture))
                games, seeds_in = what, None
            else:
                try:
                    row.update(time_train(what, train_games, len(seeds), 1, device, rollout, preset.horizon, capture))
                except RuntimeError as error:  # a capture this torch or device cannot do: said, not fatal
                    if not capture:
                        raise
                    row.update({"config": what, "error": str(error)[-2000:]})
                games, seeds_in = train_games * len(seeds), len(seeds)
            peak = torch.cuda.max_memory_allocated(dev) if cuda else None
            row["peak_gpu_bytes"] = peak
            row["peak_gpu_bytes_per_game"] = None if peak is None else round(peak / games)
            if seeds_in is not None:
                row["peak_gpu_bytes_per_seed"] = None if peak is None else round(peak / seeds_in)
        rows.append(row)
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")
    return rows


def use_capture(bench: list[dict]) -> bool:
    """Train with the captured acting step when this slot's bench timed it on CUDA, without
    error, at least as fast as eager acting for every config it timed both ways."""
    rows = [row for row in bench if row.get("bench") == "train" and row.get("device", "").startswith("cuda")]
    eager = {row["config"]: row.get("env_steps_per_s") for row in rows if not row.get("capture")}
    captured = {row["config"]: row.get("env_steps_per_s") for row in rows if row.get("capture")}
    both = [name for name in captured if captured[name] and eager.get(name)]
    return bool(both) and all(captured[name] >= eager[name] for name in both) and all(
        "error" not in row for row in rows)


# ---------------------------------------------------------------------- the campaign
class Campaign:
    """OUT/campaign.json and the run folders of one campaign (one preset, one list of seeds)."""

    def __init__(self, out: Path, results: Path, preset: str, seeds: list[int], conditions: list[str]) -> None:
        self.out, self.results, self.preset, self.seeds, self.conditions = out, results, preset, seeds, conditions
        self.path = out / CAMPAIGN_FILE
        data = read_json(self.path)
        if data is not None:
            if data.get("format") != CAMPAIGN_FORMAT:
                raise ValueError(f"{str(self.path)!r} has format {data.get('format')!r}, not {CAMPAIGN_FORMAT}")
            if data["preset"] != preset:
                raise ValueError(f"{str(self.path)!r} was written for preset {data['preset']!r}, not {preset!r}: "
                                 f"use --preset {data['preset']} or another --out")
            if data["seeds"] != seeds:
                raise ValueError(f"{str(self.path)!r} was written for seeds {data['seeds']}, not {seeds}: "
                                 "use those seeds or another --out")
        self.data = data or {"format": CAMPAIGN_FORMAT, "preset": preset, "seeds": seeds, "runs": {}, "slots": []}
        self.resolved = {c: json.loads(json.dumps(resolved_config(c, preset, seeds), default=str)) for c in conditions}
        for condition in conditions:
            self.state(condition)  # a results folder holding another run is an error before anything trains

    def name(self, condition: str) -> str:
        return self.resolved[condition]["config"]["name"]

    def folder(self, condition: str) -> Path:
        """Where the run trains (OUT/runs/NAME)."""
        return self.out / "runs" / self.name(condition)

    def destination(self, condition: str) -> Path:
        """Where the finished run goes (RESULTS/NAME/PRESET)."""
        return self.results / self.name(condition) / self.preset

    def state(self, condition: str) -> str:
        """done (in RESULTS), trained (finished in OUT, episodes not recorded yet), training
        (a checkpoint in OUT) or pending."""
        dest, src = self.destination(condition), self.folder(condition)
        if dest.exists():
            if not (dest / "done").is_file() or read_json(dest / "config.json") != self.resolved[condition]:
                raise ValueError(f"results folder {str(dest)!r} holds another or an unfinished run of "
                                 f"{self.name(condition)!r}; move it away or use another --results")
            return "done"
        if (src / "done").is_file():
            return "trained"
        return "training" if (src / "checkpoint.pt").is_file() else "pending"

    def progress(self, condition: str) -> dict:
        """What the run's folder says: state, env steps per seed (of the total), wall time, speed."""
        state = self.state(condition)
        folder = self.destination(condition) if state == "done" else self.folder(condition)
        info = read_json(folder / "provenance.json") or {}
        total = self.resolved[condition]["preset"]["total_steps"]
        return {"state": state, "env_steps_per_seed": info.get("env_steps_per_seed", 0), "total_steps_per_seed": total,
                "wall_time_s": round(info.get("wall_time_s", 0.0), 3), "env_steps_per_s": info.get("env_steps_per_s"),
                "folder": str(folder)}

    def iteration_seconds(self, condition: str, bench: list[dict]) -> float:
        """An estimate of one training iteration of `condition` on this device: from its own
        run (its env steps/s so far), else from the bench line of its config scaled to its
        rollout length, else twice the slowest one measured, else 0 (nothing known)."""
        resolved = self.resolved[condition]
        steps = resolved["preset"]["num_envs"] * len(self.seeds) * resolved["config"]["optim"]["rollout_length"]
        speed = (read_json(self.folder(condition) / "provenance.json") or {}).get("env_steps_per_s")
        if speed:
            return steps / speed
        capture = use_capture(bench)
        timed = [row for row in bench if row.get("bench") == "train" and "seconds" in row
                 and row.get("capture", False) == capture]
        if not timed:
            return 0.0
        per_step = {row["config"]: row["seconds"] / (row["iterations"] * row["seeds"] * row["num_envs"]
                                                     * row["rollout_length"]) for row in timed}
        return steps * per_step.get(self.name(condition), 2 * max(per_step.values()))

    def save(self) -> None:
        self.data["runs"] = {**self.data["runs"], **{self.name(c): self.progress(c) for c in self.conditions}}
        write_json(self.path, self.data)


def finish(campaign: Campaign, condition: str, device: str) -> float:
    """Record the finished run's episodes in its folder, note the slots that trained it in its
    provenance.json, and move the folder (its checkpoint too) to RESULTS; returns the seconds
    the recording took."""
    from .episodes.recording import ensure_episodes

    src, dest = campaign.folder(condition), campaign.destination(condition)
    started = time.monotonic()
    ensure_episodes(src, device)
    seconds = time.monotonic() - started
    info = read_json(src / "provenance.json") or {}
    name = campaign.name(condition)
    info["campaign_slots"] = [{**{k: slot[k] for k in ("started_utc", "device", "device_name", "git_commit", "torch")},
                               **slot["runs"][name]} for slot in campaign.data["slots"] if name in slot.get("runs", {})]
    write_json(src / "provenance.json", info)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src), str(dest))
    return seconds


def run_slot(out: Path, minutes: float, preset: str = "campaign", device: str = "auto",
             conditions: list[str] | None = None, seeds: list[int] | None = None,
             results: Path = Path("results/runs"), bench_seconds: float | None = None,
             started: float | None = None) -> dict:
    """One slot of at most `minutes` from `started` (a time.monotonic() time; default: now).
    Returns the summary it prints."""
    started = time.monotonic() if started is None else started
    if not minutes > 0:
        raise ValueError(f"--minutes must be positive, got {minutes}")
    get_preset(preset)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = resolve_device(device)
    seeds = list(range(5)) if seeds is None else seeds
    conditions = list(CAMPAIGN if conditions is None else conditions)
    if not conditions or len(set(conditions)) != len(conditions):
        raise ValueError(f"--conditions needs distinct conditions, got {conditions}")
    for condition in conditions:
        load_config(condition)  # an unknown name is an error naming it
    budget = minutes * 60.0
    if bench_seconds is None:
        bench_seconds = min(60.0, 0.1 * budget)
    if bench_seconds < 0:
        raise ValueError(f"--bench-seconds must be >= 0, got {bench_seconds}")
    margin = min(30.0, max(1.0, 0.05 * budget))  # what the end of the slot needs after the last save
    deadline = started + budget - margin

    campaign = Campaign(out, results, preset, seeds, conditions)
    cuda = dev.type == "cuda"
    slot = {"started_utc": now_utc(), "minutes": minutes, "device": str(device), "device_name": device_name(dev),
            "torch": torch.__version__, "git_commit": git_commit(), "conditions": [campaign.name(c) for c in conditions],
            "runs": {}}
    campaign.data["slots"].append(slot)
    campaign.save()
    bench: list[dict] = []
    if bench_seconds > 0:
        bench_path = out / "bench" / f"{slot['started_utc'].replace(':', '')}.jsonl"
        bench = run_bench(bench_path, device, preset, seeds, min(bench_seconds, max(0.0, deadline - time.monotonic())))
        slot["bench"] = str(bench_path.relative_to(out))
    slot["capture"] = use_capture(bench)  # acting replayed as a CUDA graph (measured faster, no error)
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)

    finished, stopped = [], "the campaign is finished"
    record_estimates = list(campaign.data.get("record_seconds", []))  # seconds of earlier recordings
    for condition in conditions:
        name, state = campaign.name(condition), campaign.state(condition)
        if state == "done":
            continue
        iteration = campaign.iteration_seconds(condition, bench)
        if state != "trained":
            if time.monotonic() + 2 * iteration > deadline:
                stopped = f"no time left to train {name} (one iteration takes about {iteration:.1f} s)"
                break
            before = campaign.progress(condition)
            call = time.monotonic()
            train(condition, preset, seeds, device, campaign.folder(condition), progress=False, deadline=deadline,
                  capture=slot["capture"])
            after = campaign.progress(condition)
            steps = after["env_steps_per_seed"] - before["env_steps_per_seed"]
            wall = after["wall_time_s"] - before["wall_time_s"]
            slot["runs"][name] = {"env_steps_before": before["env_steps_per_seed"],
                                  "env_steps_after": after["env_steps_per_seed"],
                                  "seconds": round(time.monotonic() - call, 3),
                                  "env_steps_per_s": round(steps * len(seeds) / wall, 1) if wall > 0 else None}
            campaign.save()
            print(f"{name}: {after['env_steps_per_seed']:,} / {after['total_steps_per_seed']:,} env steps per seed "
                  f"({100 * after['env_steps_per_seed'] / after['total_steps_per_seed']:.1f}%), "
                  f"{slot['runs'][name]['env_steps_per_s'] or 0:,.0f} env steps/s ({len(seeds)} seeds), "
                  f"{slot['runs'][name]['seconds']:.0f} s this slot, {after['state']}", flush=True)
            if after["state"] != "trained":
                stopped = "deadline"
                break
        rollout = campaign.resolved[condition]["config"]["optim"]["rollout_length"]
        horizon = campaign.resolved[condition]["preset"]["horizon"] or 1000  # None: the social dilemmas' own
        record = max(record_estimates, default=iteration * horizon / rollout)  # a recording plays one episode
        if time.monotonic() + record > deadline:
            stopped = f"no time left to record the episodes of {name} (about {record:.0f} s)"
            break
        seconds = finish(campaign, condition, device)
        record_estimates.append(seconds)
        campaign.data["record_seconds"] = [round(s, 3) for s in record_estimates[-10:]]
        finished.append(name)
        campaign.save()
        print(f"{name}: finished, episodes recorded in {seconds:.1f} s, moved to {campaign.destination(condition)}",
              flush=True)

    slot["wall_s"] = round(time.monotonic() - started, 3)
    slot["stopped"] = stopped
    slot["finished"] = finished
    if cuda:
        slot["peak_gpu_bytes"] = torch.cuda.max_memory_allocated(dev)
    campaign.save()
    runs = {campaign.name(c): campaign.progress(c) for c in conditions}
    return {
        "slot": len(campaign.data["slots"]),
        "device": str(device),
        "device_name": slot["device_name"],
        "preset": preset,
        "budget_s": budget,
        "wall_s": slot["wall_s"],
        "stopped": stopped,
        "finished_this_slot": finished,
        "done": [n for n, r in runs.items() if r["state"] == "done"],
        "in_progress": {n: {k: r[k] for k in ("state", "env_steps_per_seed", "total_steps_per_seed")}
                        for n, r in runs.items() if r["state"] in ("training", "trained")},
        "pending": [n for n, r in runs.items() if r["state"] == "pending"],
        "env_steps_per_s": {n: r["env_steps_per_s"] for n, r in slot["runs"].items()},
        "bench": slot.get("bench"),
        "campaign": str(campaign.path),
    }


def main(argv: list[str] | None = None, started: float | None = None) -> dict:
    """The command line; `started`: when the slot began (time.monotonic(); default now)."""
    started = time.monotonic() if started is None else started
    parser = argparse.ArgumentParser(prog="python -m ssdlib.gpu_run", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--minutes", type=float, required=True, help="length of the slot; it stops cleanly before")
    parser.add_argument("--out", type=Path, required=True, help="campaign folder (commit it after each slot)")
    parser.add_argument("--preset", default="campaign", help=f"one of {', '.join(PRESETS)}")
    parser.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu, cuda or cuda:N")
    parser.add_argument("--conditions", default=None,
                        help="comma-separated conditions (packaged names or .toml paths) instead of the campaign's")
    parser.add_argument("--seeds", default="0-4", help="seeds trained together: a range like 0-4 or a list")
    parser.add_argument("--results", type=Path, default=Path("results/runs"),
                        help="where finished runs go, as RESULTS/CONDITION/PRESET")
    parser.add_argument("--bench-seconds", type=float, default=None,
                        help="time of the benchmarks first (0: none); default a tenth of the slot, at most 60")
    args = parser.parse_args(argv)
    try:
        conditions = None if args.conditions is None else [c.strip() for c in args.conditions.split(",")]
        if args.preset not in PRESETS:
            raise ValueError(f"unknown preset {args.preset!r}; choose from {sorted(PRESETS)}")
        if args.device == "auto" and not torch.cuda.is_available():
            print("no CUDA device here: training on the CPU", file=sys.stderr, flush=True)
        summary = run_slot(args.out, args.minutes, args.preset, args.device, conditions, parse_seeds(args.seeds),
                           args.results, args.bench_seconds, started)
    except ValueError as error:
        sys.exit(f"error: {error}")
    print(json.dumps(summary, indent=2), flush=True)
    return summary


if __name__ == "__main__":
    main(started=_STARTED)
