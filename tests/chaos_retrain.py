"""Chaos for the retraining registry: several `jobs/retrain.py` processes at once on one registry
(local or S3), retraining on three datasets with a few recipes or rolling the champion back, each
killed with SIGKILL at a random moment or not, round after round; after each round the registry is
checked:

- the champion loads;
- every pointer (the champion's, every pointer in its history, each candidate's, each run's
  checkpoint pointer) names files that exist with the digests it records;
- every decision record agrees with the pointer's history: a promotion or rollback recorded as
  done is in it, one recorded as not done is not, each step of the history is one record's, and
  its "before" is the version the step replaced;
- nothing outside the registry changed.

Processes are forked from a forkserver that has imported torch and the package once, so a round
costs training, not imports. `python -m tests.chaos_retrain --rounds 40 [--s3]` runs it at length
(with --s3 on a moto server of its own) and prints the report as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from swinls import storage

ROLLBACK_SHARE = 0.25
KILL_SHARE = 0.6
KILL_WITHIN_S = 9.0  # a training run here takes 5-10 s; kills land anywhere in it, commits included
SEEDS = tuple(range(8))  # 24 keys with the three datasets: most runs have a challenger to train
TEMPORARY = ".tmp-"  # storage's prefix for a file being written (renamed into place when complete)
ROOT_FOLDERS = {"champion", "decisions", "locks", "runs", "searches", "candidates", "champion_f1.png"}


def child(argv: list[str], log_path: str, env: dict[str, str]) -> None:
    """One jobs/retrain.py process (in a fresh fork of the forkserver)."""
    os.environ.update(env)
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        from tests.jobs import load_job

        code = load_job("retrain").main(argv)
    sys.stdout.flush()
    os._exit(code)


def forkserver():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "timm", "swinls.retraining", "swinls.training", "swinls.models",
                                    "swinls.data.local", "tests.jobs"])
    return context


def fingerprint(uri: str, skip: str | None = None) -> dict[str, str]:
    """sha256 of every file under `uri`, except under `skip`."""
    if not storage.exists(uri):
        return {}
    out = {}
    for name in storage.list_files(uri):
        full = storage.join(uri, name)
        if skip and (full == skip or full.startswith(skip.rstrip("/") + "/")):
            continue
        out[name] = hashlib.sha256(storage.read_bytes(full)).hexdigest()
    return out


class Chaos:
    def __init__(self, registry: str, data: dict[str, str], outside: list[str], logs: Path, seed: int = 0,
                 env: dict[str, str] | None = None, kill_within: float = KILL_WITHIN_S) -> None:
        self.registry, self.data, self.outside, self.logs = registry, data, outside, logs
        self.kill_within = kill_within
        self.rng = random.Random(seed)
        # the forkserver's environment is the one it started with: the children get today's S3 settings
        self.env = {**{k: v for k, v in os.environ.items() if k.startswith("AWS_")}, "SWINLS_LEASE_TTL_S": "4",
                    **(env or {})}
        self.context = forkserver()
        self.before = {uri: fingerprint(uri, registry) for uri in outside}
        self.stats: Counter = Counter()
        self.violations: list[str] = []
        self.launched = 0

    # -- the processes ---------------------------------------------------------------------------
    def _argv(self) -> tuple[str, list[str]]:
        from swinls.retraining import ModelRegistry
        from tests.retrain_world import job_args

        versions = ModelRegistry(self.registry).versions()
        if versions and self.rng.random() < ROLLBACK_SHARE:
            return "rollback", ["--registry", self.registry, "--rollback", self.rng.choice(versions)]
        name, seed = self.rng.choice(sorted(self.data)), self.rng.choice(SEEDS)
        return "retrain", ["--data", self.data[name], "--registry", self.registry, *job_args(seed)]

    def round(self, processes: int = 3, timeout: float = 240.0) -> None:
        running = []
        for _ in range(processes):
            kind, argv = self._argv()
            self.launched += 1
            log = self.logs / f"{self.launched:04d}-{kind}.log"
            proc = self.context.Process(target=child, args=(argv, str(log), self.env))
            proc.start()
            running.append([proc, kind, log, self._kill_plan()])
        intents = set(self._intents())
        deadline = time.monotonic() + timeout
        while any(p.is_alive() for p, *_ in running):
            now = time.monotonic()
            new_intent = any(plan and plan[0] == "at an intent" for *_, plan in running) and \
                bool(set(self._intents()) - intents)
            for entry in running:
                proc, kind, log, plan = entry
                if plan and plan[0] == "after evaluating" and log.exists() \
                        and "evaluating on validation" in log.read_text():
                    entry[3] = plan = ("at", now + plan[1])
                if plan and plan[0] == "at an intent" and new_intent and kind == "retrain":
                    entry[3] = plan = ("at", now)
                if plan and plan[0] == "at" and now >= plan[1] and proc.is_alive():
                    proc.kill()
            if now > deadline:
                raise TimeoutError(f"processes of round {self.stats['rounds'] + 1} still running after {timeout:g} s")
            time.sleep(0.005)
        for proc, kind, log, _ in running:
            proc.join()
            self.stats[self._outcome(proc.exitcode, kind, log)] += 1
            text = log.read_text() if log.exists() else ""
            # kills that landed between a recorded intent and its outcome, as later runs found them
            self.stats["intents settled by another run"] += text.count("\nsettled ") + text.startswith("settled ")
            self.stats["promotions finished by their rerun"] += text.count("finishing it")
        self.stats["rounds"] += 1
        self.check()

    def _kill_plan(self):
        """None (not killed), or when: at a moment anywhere in the run; a moment after it starts
        judging (evaluation, staging, the commit); or as soon as a promotion's intent appears."""
        if self.rng.random() >= KILL_SHARE:
            return None
        draw = self.rng.random()
        if draw < 0.3:
            return ("at", time.monotonic() + self.rng.uniform(0.2, self.kill_within))
        if draw < 0.6:
            return ("after evaluating", self.rng.uniform(0.0, self.kill_within / 4))
        return ("at an intent",)

    def _intents(self) -> list[str]:
        root = storage.join(self.registry, "decisions")
        try:
            return [n for n in storage.list_files(root) if n.endswith(".pending.json")]
        except FileNotFoundError:
            return []

    @staticmethod
    def _outcome(code: int | None, kind: str, log: Path) -> str:
        if code == -9:
            return "killed"
        text = log.read_text()
        if code == 0:
            last = text.strip().splitlines()[-1] if text.strip() else ""
            return f"{kind} " + (last.split()[1] if last.startswith("decision:") else "done")
        if code == 2 and "already under way" in text:
            return "refused: run under way"
        if code == 2 and "is already the champion" in text:
            return "refused: already the champion"
        if code == 2 and "champion changed while it was rolled back" in text:
            return "rollback lost a race"
        if code == 2 and "cannot be loaded, so it cannot be the champion" in text:
            return "refused: a version a killed run left half-written"
        return f"failed ({code}): {text.strip().splitlines()[-1] if text.strip() else 'no output'} [{log.name}]"

    # -- the checks ------------------------------------------------------------------------------
    def check(self) -> None:
        found = []
        try:
            found = self._violations()
        except Exception as exc:  # noqa: BLE001 - a check that cannot even read the registry is a violation
            found = [f"the registry could not be checked: {type(exc).__name__}: {exc}"]
        for text in found:
            self.violations.append(f"after round {self.stats['rounds']}: {text}")

    def _violations(self) -> list[str]:
        from swinls.published import load_published
        from swinls.retraining import ModelRegistry
        from swinls.retraining.records import DecisionLog

        out: list[str] = []
        registry = ModelRegistry(self.registry)
        head = registry.head()
        if head.raw is not None:
            try:
                load_published(self.registry)
            except Exception as exc:  # noqa: BLE001
                out.append(f"the champion does not load: {exc}")
        out += self._pointers_name_what_exists(registry)
        out += self._records_agree_with_history(registry, DecisionLog(registry))
        for uri, before in self.before.items():
            if fingerprint(uri, self.registry) != before:
                out.append(f"{uri} changed outside the registry")
        extra = {name.split("/", 1)[0] for name in storage.list_files(self.registry)} - ROOT_FOLDERS \
            if storage.exists(self.registry) else set()
        if extra:
            out.append(f"unexpected entries at the registry's top: {sorted(extra)}")
        return out

    def _version_ok(self, registry, pointer: dict, where: str) -> list[str]:
        folder = storage.join(registry.champion_uri, pointer["prefix"])
        out = []
        for name, digest in pointer["files"].items():
            try:
                if hashlib.sha256(storage.read_bytes(storage.join(folder, name))).hexdigest() != digest:
                    out.append(f"{where} names {pointer['version']}/{name}, whose content does not match")
            except FileNotFoundError:
                out.append(f"{where} names {pointer['version']}/{name}, which does not exist")
        return out

    def _pointers_name_what_exists(self, registry) -> list[str]:
        from swinls import cas
        from swinls.checkpoints import RunStore

        out = []
        for digest, pointer in registry.chain():
            out += self._version_ok(registry, pointer, f"champion pointer {digest[:12]}")
        root = storage.join(registry.champion_uri, "pointers")
        for name in storage.list_files(root) if storage.exists(root) else []:
            if name.startswith(TEMPORARY):
                continue  # a writer killed mid-write left its temporary file, which no reader looks at
            snap = cas.read(storage.join(root, name))
            if snap.digest != name.removesuffix(".json"):
                out.append(f"pointers/{name} does not hold the bytes its name says")
        for base in ("candidates", "runs"):
            folder = registry.path(base)
            keys = {n.split("/", 1)[0] for n in storage.list_files(folder)} if storage.exists(folder) else set()
            for key in sorted(keys):
                if base == "candidates":
                    uri = storage.join(folder, key)
                    if storage.exists(storage.join(uri, storage.POINTER_NAME)):
                        pointer = storage.latest_version(uri)
                        for name, digest in pointer["files"].items():
                            data = storage.read_bytes(storage.join(pointer["uri"], name))
                            if hashlib.sha256(data).hexdigest() != digest:
                                out.append(f"candidates/{key} names {name}, whose content does not match")
                else:
                    store = RunStore(storage.join(folder, key))
                    latest = store.latest()
                    if latest is not None:
                        try:
                            store.load()
                        except Exception as exc:  # noqa: BLE001
                            out.append(f"runs/{key}: its checkpoint pointer names what does not load: {exc}")
        return out

    def _records_agree_with_history(self, registry, log) -> list[str]:
        out = []
        chain = registry.chain()
        steps = {digest: (index, pointer) for index, (digest, pointer) in enumerate(chain)}
        explained: Counter = Counter()
        root = registry.path("decisions")
        names = storage.list_files(root) if storage.exists(root) else {}
        for name in names:
            if name.startswith(TEMPORARY):
                continue
            if name.endswith(".pending.json") and name.removesuffix(".pending.json") + ".json" in names:
                continue  # its final record is written; the run was cut off before removing the intent
            record = storage.read_json(storage.join(root, name))
            wrote = record.get("pointer_sha256")
            if wrote is None:
                continue  # a verdict that moves nothing (kept before any swap)
            verdict = record["verdict"]
            if verdict in ("promoted", "rolled-back"):
                if wrote not in steps:
                    out.append(f"{name} says {verdict} but its pointer is not in the pointer's history")
                    continue
                explained[wrote] += 1
                index, _ = steps[wrote]
                previous = chain[index + 1][1] if index + 1 < len(chain) else None
                if (previous or {}).get("version") != record["champion"]["before"]:
                    out.append(f"{name}: 'before' is {record['champion']['before']}, but the pointer it replaced "
                               f"named {(previous or {}).get('version')}")
            elif verdict in ("kept", "abandoned"):
                if wrote in steps:
                    out.append(f"{name} says {verdict}, but its pointer is in the pointer's history")
            elif verdict in ("promoting", "rolling-back"):
                if wrote in steps:
                    explained[wrote] += 1  # done, its record not yet settled (the next run settles it)
            else:
                out.append(f"{name}: unknown verdict {verdict!r}")
        for digest, (index, pointer) in steps.items():
            if explained[digest] != 1:
                out.append(f"pointer {digest[:12]} ({(pointer or {}).get('version')}) is explained by "
                           f"{explained[digest]} records, not one")
        return out

    def settle(self) -> None:
        """What every run does first, once more after the last kill: settle the intents; then a strict check."""
        from swinls.retraining.records import DecisionLog
        from swinls.retraining import ModelRegistry

        self.stats["intents settled at the end"] += len(DecisionLog(ModelRegistry(self.registry)).settle(log=lambda line: None))
        self.check()
        registry = ModelRegistry(self.registry)
        history = {digest for digest, _ in registry.chain()}
        for uri, record in DecisionLog(registry).pending():
            if record["pointer_sha256"] in history or record["pointer"]["replaces"] != registry.head().digest:
                self.violations.append(f"{uri}: left pending though the pointer's history decides it")

    def report(self) -> dict:
        from swinls.retraining import ModelRegistry

        litter = [n for n in storage.list_files(self.registry) if n.rsplit("/", 1)[-1].startswith(TEMPORARY)] \
            if storage.exists(self.registry) else []
        return {"registry": self.registry, "rounds": self.stats["rounds"], "processes": self.launched,
                "kills": self.stats["killed"], "pointer_writes": len(ModelRegistry(self.registry).chain()),
                "temporary_files_left_by_kills": len(litter),
                "violations": self.violations,
                "outcomes": {k: v for k, v in sorted(self.stats.items()) if k not in ("rounds",)}}


def run(registry: str, data: dict[str, str], outside: list[str], logs: Path, rounds: int, processes: int = 3,
        seed: int = 0, kill_within: float | None = None, min_kills: int = 0) -> dict:
    """`kill_within`: kills land uniformly in the first this many seconds of a process (default: 9
    locally, 20 on S3, where a run makes many more requests). Whether a planned kill lands depends
    on how fast the runs go (a run may end before its moment): with `min_kills`, rounds go on past
    `rounds` (up to as many again) until that many processes were killed."""
    if kill_within is None:
        kill_within = 20.0 if storage.is_s3(registry) else KILL_WITHIN_S
    chaos = Chaos(registry, data, outside, logs, seed, kill_within=kill_within)
    started = time.monotonic()
    for done in range(2 * rounds):
        if done >= rounds and chaos.stats["killed"] >= min_kills:
            break
        chaos.round(processes)
    chaos.settle()
    return dict(chaos.report(), seconds=round(time.monotonic() - started, 1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--s3", action="store_true", help="the registry on a moto S3 server started here")
    args = parser.parse_args(argv)
    from tests.retrain_world import small_datasets

    root = Path(tempfile.mkdtemp(prefix="swinls-chaos-"))
    data = small_datasets(root)
    outside = [str(root / "shards-A"), str(root / "shards-B")]
    registry = str(root / "registry")
    if args.s3:
        from moto.server import ThreadedMotoServer

        from tests.conftest import _atomic_conditional_writes

        _atomic_conditional_writes()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        os.environ.update(AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_ACCESS_KEY_ID="chaos",
                          AWS_SECRET_ACCESS_KEY="chaos", AWS_DEFAULT_REGION="us-east-1")
        storage.filesystem("s3://chaos")[0].mkdir("chaos")
        storage.write_bytes_atomic("s3://chaos/outside/keep.txt", b"not the registry's")
        registry, outside = "s3://chaos/registry", outside + ["s3://chaos"]
    (root / "logs").mkdir()
    report = run(registry, data, outside, root / "logs", args.rounds, args.processes, args.seed)
    print(json.dumps(report, indent=1))
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
