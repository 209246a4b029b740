"""The phases of a run and how far a run has come.

    stage1 → stage2 → pseudo1 → selftrain1-stage1 → selftrain1-stage2 → pseudo2 → …

A block is what one Ray Train fit runs: two training stages, then (when another self-training
round follows) the pseudo-labelling for it. A run resumes at the first phase that is not done:
a training phase is done when the checkpoint pointer has moved past it, a pseudo-labelling phase
when its manifest exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from swinls import selftrain
from swinls.experiment_config import ExperimentConfig, StageConfig


@dataclass(frozen=True)
class Phase:
    name: str
    index: int  # position in the whole run
    stage: StageConfig | None = None  # None for pseudo-labelling
    pseudo_round: int = 0  # the round this phase produces pseudo-labels for

    @property
    def is_training(self) -> bool:
        return self.stage is not None


@dataclass(frozen=True)
class Block:
    phases: tuple[Phase, ...]
    train_with_round: int = 0  # pseudo-labels of this round join the training rows (0: none)

    @property
    def labels_round(self) -> int:
        """The round whose pseudo-labels this block produces at its end (0: none)."""
        last = self.phases[-1]
        return last.pseudo_round if not last.is_training else 0


def plan(config: ExperimentConfig) -> list[Block]:
    phases: list[Phase] = []

    def add(name, stage=None, pseudo_round=0):
        phases.append(Phase(name, len(phases), stage, pseudo_round))
        return phases[-1]

    rounds = config.selftrain.rounds
    first = [add("stage1", config.stage1), add("stage2", config.stage2)]
    if rounds:
        first.append(add("pseudo1", pseudo_round=1))
    blocks = [Block(tuple(first))]
    for r in range(1, rounds + 1):
        block = [add(f"selftrain{r}-stage1", config.selftrain.stage1), add(f"selftrain{r}-stage2", config.selftrain.stage2)]
        if r < rounds:
            block.append(add(f"pseudo{r + 1}", pseudo_round=r + 1))
        blocks.append(Block(tuple(block), train_with_round=r))
    return blocks


def all_phases(blocks: list[Block]) -> list[Phase]:
    return [p for b in blocks for p in b.phases]


def resume_point(blocks: list[Block], pointer: dict | None, run_uri: str) -> tuple[int, int]:
    """(index of the first phase not done, the epoch to start it at)."""
    phases = all_phases(blocks)
    start_index, start_epoch = 0, 0
    if pointer is not None:
        trained = next(p for p in phases if p.name == pointer["phase"])
        if pointer["phase_done"]:
            start_index = trained.index + 1
        else:
            start_index, start_epoch = trained.index, pointer["epoch"]
    for phase in phases[start_index:]:
        if phase.is_training and (phase.stage.epochs > start_epoch if phase.index == start_index else phase.stage.epochs > 0):
            return phase.index, start_epoch if phase.index == start_index else 0
        if not phase.is_training and not selftrain.is_done(run_uri, phase.pseudo_round):
            return phase.index, 0
        start_epoch = 0
    return len(phases), 0
