"""The per-worker loop: the phases of one block, each epoch trained, evaluated and checkpointed.

Runs the same under Ray Train (DDP over gloo or NCCL, Ray Data shards) and in a plain process.
Only rank 0 writes checkpoints; every rank resumes from the latest one, so a re-run of the
same run, or Ray Train restarting a dead worker group, continues at the right phase and epoch.
Validation metrics come from pixel counts summed over workers.
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
import zlib

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from swinls import selftrain, storage
from swinls.accel import autocast, to_memory_format
from swinls.augment.ops import Augmenter
from swinls.checkpoints import RunStore
from swinls.config import ExperimentConfig, StageConfig, to_dict
from swinls.losses import composite
from swinls.metrics import Confusion, ScoreHistogram
from swinls.models import SegmentationModel, build_model
from swinls.training.context import WorkerContext
from swinls.training.plan import Block, Phase, resume_point


class Schedule:
    """Per-epoch learning rate: linear warm-up, then cosine decay or constant."""

    def __init__(self, stage: StageConfig) -> None:
        self.stage = stage
        self.epoch = 0

    def lr(self, epoch: int) -> float:
        s = self.stage
        if epoch < s.warmup_epochs:
            return s.lr * (epoch + 1) / (s.warmup_epochs + 1)
        if s.schedule == "constant":
            return s.lr
        span = max(1, s.epochs - s.warmup_epochs)
        return s.lr * 0.5 * (1 + math.cos(math.pi * (epoch - s.warmup_epochs) / span))

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "base_lr": self.stage.lr, "schedule": self.stage.schedule}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])


def _seed(*parts) -> int:
    return zlib.crc32(repr(parts).encode())


def _optimizer(stage: StageConfig, params):
    if stage.optimizer == "sgd":
        return torch.optim.SGD(params, lr=stage.lr, momentum=0.9, weight_decay=stage.weight_decay)
    return torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)


class BlockRunner:
    def __init__(self, config: ExperimentConfig, run_uri: str, blocks: list[Block], ctx: WorkerContext,
                 normalization: dict) -> None:
        self.config, self.run_uri, self.blocks, self.ctx = config, run_uri, blocks, ctx
        self.normalization = normalization
        self.store = RunStore(run_uri)
        self.attempt = uuid.uuid4().hex[:8]
        self.channels = tuple(normalization["channels"])
        self.augmenter = Augmenter(config.data.augment)
        trained = [p for b in blocks for p in b.phases if p.is_training and p.stage.epochs > 0]
        self.final_phase = trained[-1].name if trained else None

    def run(self, block: Block) -> None:
        pointer = self.store.latest()
        start_index, start_epoch = resume_point(self.blocks, pointer, self.run_uri)
        phases = [p for p in block.phases if p.index >= start_index]
        if not phases:
            return
        resume_state = self.store.load() if pointer else None
        self.history = list(pointer["history"]) if pointer else []
        torch.manual_seed(self.config.run.seed)  # identical initial weights on every rank
        model_config = self.config.model if resume_state is None else dataclasses.replace(self.config.model, pretrained=None)
        self.model = build_model(model_config, self.channels)
        if resume_state is not None:
            self.model.load_state_dict(resume_state["model"])
        self.model.to(self.ctx.device)
        if self.config.model.channels_last:
            self.model.to(memory_format=torch.channels_last)
        for phase in phases:
            resuming = resume_state is not None and resume_state["phase"] == phase.name and not resume_state["phase_done"]
            epoch0 = start_epoch if phase.index == start_index else 0
            if phase.is_training:
                if phase.stage.epochs > epoch0:
                    self._train_phase(phase, epoch0, resume_state if resuming else None)
            elif not selftrain.is_done(self.run_uri, phase.pseudo_round):
                self._pseudo_label(phase.pseudo_round)

    # -- training ---------------------------------------------------------------------------
    def _train_phase(self, phase: Phase, epoch0: int, resume_state: dict | None) -> None:
        stage, model, ctx = phase.stage, self.model, self.ctx
        if stage.freeze_encoder:
            model.freeze_encoder()
        else:
            model.unfreeze_encoder()
        if model.image_head is not None:  # DDP refuses parameters that get no gradient
            model.image_head.requires_grad_(stage.loss.image > 0)
        optimizer = _optimizer(stage, [p for p in model.parameters() if p.requires_grad])
        schedule = Schedule(stage)
        if resume_state is not None:
            optimizer.load_state_dict(resume_state["optimizer"])
            schedule.load_state_dict(resume_state["scheduler"])
        net = model
        if ctx.world_size > 1:
            device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            net = DistributedDataParallel(model, device_ids=device_ids)
        if self.config.model.compile:
            net = torch.compile(net, backend=self.config.model.compile_backend)
        for epoch in range(epoch0, stage.epochs):
            started = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = schedule.lr(epoch)
            epoch_key = phase.index * 10_000 + epoch  # distinct augmentation draws in every phase
            torch.manual_seed(_seed(self.config.run.seed, phase.name, epoch, ctx.rank))
            loss, patches = self._train_epoch(net, optimizer, stage, epoch_key)
            train_seconds = time.perf_counter() - started
            schedule.epoch = epoch + 1
            metrics = {"phase": phase.name, "phase_epoch": epoch + 1, "epoch": len(self.history) + 1,
                       "lr": schedule.lr(epoch), "train_loss": loss, "train_patches": patches,
                       "train_seconds": train_seconds, **self._evaluate("valid")}
            if ctx.has_split("holdout"):
                metrics.update(self._evaluate("holdout"))
            metrics["seconds"] = time.perf_counter() - started
            metrics["attempt"] = self.attempt
            self.history.append(metrics)
            done = epoch + 1 == stage.epochs
            metrics["run_complete"] = done and phase.name == self.final_phase  # tells a finished run from a stopped one
            if ctx.rank == 0 and (done or (epoch + 1) % self.config.run.checkpoint_every == 0):
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
                         "rng": {"torch": torch.get_rng_state(), "seed": self.config.run.seed},
                         "config": to_dict(self.config), "normalization": self.normalization,
                         "channels": list(self.channels), "history": self.history}
                metrics["checkpoint"] = self.store.save(state, phase=phase.name, epoch=epoch + 1, phase_done=done,
                                                        history=self.history, keep=self.config.run.keep_checkpoints)
            ctx.report(metrics)

    def _train_epoch(self, net, optimizer, stage: StageConfig, epoch_key: int) -> tuple[float, int]:
        """Mean loss and number of patches, over all workers."""
        net.train()
        ctx, total, count = self.ctx, 0.0, 0
        for batch in ctx.batches("train", epoch=epoch_key, batch_size=self.config.data.batch_size,
                                 augmenter=self.augmenter, shuffle=True, seed=self.config.run.seed):
            with autocast(ctx.device, self.config.run.bf16):
                outputs = net(to_memory_format(batch.image, self.config.model.channels_last))
            loss, _ = composite(outputs, batch.mask, stage.loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
        total, count = ctx.all_sum([total, float(count)])
        return (total / count if count else float("nan")), int(count)

    @torch.no_grad()
    def _predict(self, image: torch.Tensor) -> torch.Tensor:
        with autocast(self.ctx.device, self.config.run.bf16):
            return self.model(to_memory_format(image, self.config.model.channels_last))["logits"].float()

    def _evaluate(self, split: str) -> dict[str, float]:
        """P/R/F1/IoU of the landslide class at argmax, and AP, best-threshold F1 and that threshold,
        from pixel counts summed over workers."""
        self.model.eval()
        confusion, histogram = Confusion(), ScoreHistogram()
        for batch in self.ctx.batches(split, epoch=0, batch_size=self.config.data.eval_batch_size):
            logits = self._predict(batch.image)
            confusion.add(logits.argmax(1), batch.mask)
            histogram.add(torch.softmax(logits, dim=1)[:, 1], batch.mask)
        counts = self.ctx.all_sum([confusion.tp, confusion.fp, confusion.fn, confusion.tn] + histogram.to_list())
        confusion, histogram = Confusion(*(int(c) for c in counts[:4])), ScoreHistogram.from_list(counts[4:])
        best_f1, best_threshold = histogram.best_operating_point()  # the threshold: `jobs/predict.py --threshold card`
        return ({f"{split}_{k}": v for k, v in confusion.scores().items()} | {f"{split}_pixels": confusion.pixels}
                | {f"{split}_ap": histogram.average_precision(), f"{split}_best_f1": best_f1,
                   f"{split}_best_threshold": best_threshold})

    # -- self-training ----------------------------------------------------------------------
    def _pseudo_label(self, round_no: int) -> None:
        ctx, model = self.ctx, self.model
        model.eval()
        keys, predictions, confidences = [], [], []
        for batch in ctx.batches("unlabeled", epoch=0, batch_size=self.config.data.eval_batch_size):
            probabilities = torch.softmax(self._predict(batch.image), dim=1)
            confidence, predicted = probabilities.max(dim=1)
            keys.extend(int(k) for k in batch.keys)
            predictions.extend(predicted.to(torch.uint8).cpu().numpy())
            confidences.extend(confidence.to(torch.float16).cpu().numpy())
        # the ranking is global: every rank sees every rank's confidences, in rank order
        gathered = ctx.all_gather((keys, predictions, confidences))
        all_pred = [p for _, preds, _ in gathered for p in preds]
        all_conf = [c for _, _, confs in gathered for c in confs]
        labels = selftrain.keep_top_percent(all_pred, all_conf, self.config.selftrain.top_percent)
        offset = sum(len(k) for k, _, _ in gathered[:ctx.rank])
        mine = labels[offset:offset + len(keys)]
        selftrain.write_rank(self.run_uri, round_no, ctx.rank, np.array(keys, np.int64), mine)
        ctx.barrier()
        if ctx.rank == 0:
            files = [f"rank-{r}.parquet" for r in range(ctx.world_size)]
            stats = {"top_percent": self.config.selftrain.top_percent, "rows": len(labels), **selftrain.kept_fractions(labels)}
            self._save_pngs(round_no, labels)
            selftrain.write_manifest(self.run_uri, round_no, files, stats)
        ctx.barrier()

    def _save_pngs(self, round_no: int, labels: list[np.ndarray]) -> None:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            for i, label in enumerate(labels[: self.config.selftrain.png_samples]):
                path = Path(tmp) / f"pseudo-{i}.png"
                selftrain.save_png(path, label)
                storage.put_file_atomic(path, storage.join(selftrain.round_uri(self.run_uri, round_no), "png", path.name))


def run_block(config: ExperimentConfig, run_uri: str, blocks: list[Block], block_index: int, ctx: WorkerContext,
              normalization: dict) -> None:
    BlockRunner(config, run_uri, blocks, ctx, normalization).run(blocks[block_index])


def worker_entry(loop_config: dict) -> None:
    """The function Ray Train runs on every worker."""
    from swinls.config import ExperimentConfig, from_dict
    from swinls.training.context import RayContext
    from swinls.training.plan import plan

    config = from_dict(ExperimentConfig, loop_config["experiment"])
    ctx = RayContext(shuffle_buffer=config.data.shuffle_buffer)
    if loop_config.get("pid_file"):  # lets fault-tolerance tests find a worker to kill
        import os

        storage.write_bytes_atomic(f"{loop_config['pid_file']}-rank{ctx.rank}", str(os.getpid()).encode())
    run_block(config, loop_config["run_uri"], plan(config), loop_config["block"], ctx, loop_config["normalization"])
