"""Kill soak: SIGKILL an active-learning project at random moments and check that nothing is lost.

A small simulated project (48 synthetic images, a tiny U-Net, 12 rounds of 3 images) is run with
``crackal al run`` in a child process that is killed with SIGKILL, again and again, resuming each
time: in turn at a random moment, during training, just after the queue's labels were recorded,
while it scores the pool, and just after a round finished. After every kill the project is
checked: the database passes SQLite's integrity check, no label is lost or duplicated, every
label the database names is a readable file, no finished round is lost, and the queue holds
only unlabelled pool images. Finally the project is run to the end and its selections (which
images were labelled in which round) are compared with a project run without interruption
from the same seed: they must be identical.

    python benchmarks/kill_soak.py --kills 20          # about 4 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, hardware, write_docs  # noqa: E402

INIT = ["--initial", "4", "--query-size", "3", "--epochs", "6", "--crop-size", "64", "--iterations", "4", "--heldout", "6",
        "--set", "train.arch=unet", "--set", "train.base_channels=8", "--set", "train.depth=3", "--set", "train.samples_per_epoch=16",
        "--set", "train.threads=1", "--set", "patience=null"]


def crackal(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "crackal.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def run(*args: str) -> None:
    process = crackal(*args)
    _, err = process.communicate()
    if process.returncode:
        raise SystemExit(f"crackal {' '.join(args)} failed: {err}")


def state(project: Path) -> dict:
    """What the database says, read without crackal (so a bug there cannot hide itself)."""
    conn = sqlite3.connect(f"file:{project / 'project.db'}?mode=ro", uri=True)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        labels = conn.execute("SELECT images.name, labels.path, labels.round FROM labels JOIN images ON images.id = labels.image_id "
                              "ORDER BY labels.id").fetchall()
        rounds = conn.execute("SELECT round, state FROM rounds ORDER BY round").fetchall()
        queue = conn.execute("SELECT images.name, images.role FROM queue JOIN images ON images.id = queue.image_id").fetchall()
    finally:
        conn.close()
    return {"integrity": integrity, "labels": labels, "rounds": rounds, "queue": queue}


def check(project: Path, before: dict) -> dict:
    """The invariants after a kill; returns the new state."""
    now = state(project)
    problems = []
    if now["integrity"] != "ok":
        problems.append(f"integrity check: {now['integrity']}")
    names = [name for name, _, _ in now["labels"]]
    if len(names) != len(set(names)):
        problems.append(f"an image labelled twice: {[n for n, c in Counter(names).items() if c > 1]}")
    if not set(n for n, _, _ in before["labels"]) <= set(names):
        problems.append("labels lost")
    missing = [path for _, path, _ in now["labels"] if not (project / path).is_file()]
    if missing:
        problems.append(f"label files missing: {missing[:3]}")
    done_before = [r for r, s in before["rounds"] if s == "done"]
    if [r for r, s in now["rounds"] if s == "done"][: len(done_before)] != done_before:
        problems.append("a finished round lost")
    if {n for n, _ in now["queue"]} & set(names) or any(role != "pool" for _, role in now["queue"]):
        problems.append("the queue holds a labelled or held-out image")
    if problems:
        raise SystemExit(f"after a kill: {'; '.join(problems)}")
    return now


def wait_until_working(project: Path, process: subprocess.Popen) -> bool:
    """Wait until ``process`` holds the project's lock (False if it ended first)."""
    while process.poll() is None:
        try:
            if json.loads((project / ".lock").read_text() or "{}").get("pid") == process.pid:
                return True
        except (OSError, json.JSONDecodeError):
            pass
        time.sleep(0.02)
    return False


def selections(project: Path) -> list[tuple[int, str]]:
    return sorted((round_, name) for name, _, round_ in state(project)["labels"])


TARGETS = ("anywhere", "training", "just after labels were recorded", "scoring the pool", "anywhere", "between rounds")


def wait_for(target: str, project: Path, process: subprocess.Popen, rng: random.Random, first_round: float) -> bool:
    """Wait for the moment to kill ``process`` at (True), or for it to end (False)."""
    start = state(project)
    labels, done = len(start["labels"]), done_rounds(project)
    deadline = time.perf_counter() + (rng.uniform(0, 1.2 * first_round) if target == "anywhere" else 3 * first_round + 30)
    while process.poll() is None and time.perf_counter() < deadline:
        now = state(project)
        current = now["rounds"][-1][1] if now["rounds"] else None
        if ((target == "training" and current == "training" and rng.random() < 0.02)
                or (target == "just after labels were recorded" and len(now["labels"]) > labels)
                or (target == "scoring the pool" and current == "scoring")
                or (target == "between rounds" and done_rounds(project) > done)):
            return True
        time.sleep(0.01)
    return process.poll() is None


def done_rounds(project: Path) -> int:
    return sum(s == "done" for _, s in state(project)["rounds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="Work folder (default: a temporary one).")
    parser.add_argument("--no-docs", action="store_true", help="Do not write docs/benchmarks/kill_soak.md.")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="kill_soak_"))
    data = out / "data"
    run("synth", str(data), "--count", "48", "--size", "64", "--seed", "3", "--crack-free", "0.5")
    reference, soaked = out / "reference", out / "soaked"
    for project in (reference, soaked):
        run("al", "init", str(project), "--images", str(data), "--seed", str(args.seed), *INIT)

    started = time.perf_counter()
    process = crackal("al", "run", str(reference), "--rounds", str(args.rounds), "--quiet")
    wait_until_working(reference, process)
    locked = time.perf_counter()
    while not done_rounds(reference) and process.poll() is None:
        time.sleep(0.05)
    first_round = time.perf_counter() - locked  # in a new process: its lazy imports, labelling, training, scoring
    if process.wait():
        raise SystemExit(f"crackal al run failed: {process.stderr.read()}")
    uninterrupted = time.perf_counter() - started
    print(f"uninterrupted: {args.rounds} rounds in {uninterrupted:.0f} s ({first_round:.1f} s to the end of round 1 "
          "once the project is locked)")

    rng = random.Random(args.seed)
    before = state(soaked)
    phases: Counter = Counter()
    kills = 0
    while kills < args.kills:
        process = crackal("al", "run", str(soaked), "--rounds", str(args.rounds), "--quiet")
        started = time.perf_counter()
        target = TARGETS[kills % len(TARGETS)]
        if wait_until_working(soaked, process) and wait_for(target, soaked, process, rng, first_round):
            phases[target] += 1
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
        elif process.wait():
            raise SystemExit(f"crackal al run failed: {process.stderr.read()}")
        else:
            break  # it finished every round before the moment came
        before = check(soaked, before)
        print(f"kill {kills:2d} ({target}) after {time.perf_counter() - started:4.1f} s: {len(before['labels'])} labels, "
              f"{done_rounds(soaked)} rounds done")
    labels_before = len(before["labels"])
    run("al", "run", str(soaked), "--rounds", str(args.rounds), "--quiet")  # finish what is left
    final = check(soaked, before)
    identical = selections(soaked) == selections(reference)
    result = {
        "kills": kills, "phases_at_kill": dict(phases), "rounds": args.rounds, "labels_before_last_resume": labels_before,
        "labels_after": len(final["labels"]), "reference_labels": len(state(reference)["labels"]),
        "identical_selections": identical, "uninterrupted_seconds": round(uninterrupted, 1),
    }
    print(json.dumps(result, indent=1))
    if not args.no_docs:
        rows = [{"kills": kills, "killed during": ", ".join(f"{k}: {v}" for k, v in sorted(phases.items())),
                 "rounds": args.rounds, "labels after the last kill": labels_before, "labels at the end": len(final["labels"]),
                 "labels, uninterrupted run": result["reference_labels"], "identical final selections": identical}]
        write_docs("kill_soak", rows, hardware=hardware())
    if not identical:
        raise SystemExit("the killed project selected other images than the uninterrupted one")


if __name__ == "__main__":
    main()
