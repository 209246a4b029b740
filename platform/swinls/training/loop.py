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
from swinls.accel import GpuSettings, autocast, scaled_lr, to_memory_format
from swinls.augment.ops import Augmenter
from swinls.checkpoints import BackgroundSaver, RunStore
from swinls.config import to_dict
from swinls.experiment_config import ExperimentConfig, StageConfig
from swinls.metrics import DeviceCounts
from swinls.models import SegmentationModel, build_model
from swinls.models.encoders import resolve_pretrained
from swinls.published import code_version
from swinls.top_percent import keep_top_percent_distributed, margin_bits
from swinls.training.context import WorkerContext
from swinls.training.plan import Block, Phase, resume_point
from swinls.training.step import compiled_forward_loss, make_optimizer, train_step


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


def _optimizer(stage: StageConfig, params, fused: bool = False):
    return make_optimizer(stage.optimizer, params, stage.lr, stage.weight_decay, fused)


class BlockRunner:
    def __init__(self, config: ExperimentConfig, run_uri: str, blocks: list[Block], ctx: WorkerContext,
                 normalization: dict) -> None:
        self.config, self.run_uri, self.blocks, self.ctx = config, run_uri, blocks, ctx
        self.normalization = normalization
        self.store = RunStore(run_uri)
        self.attempt = uuid.uuid4().hex[:8]
        self.channels = tuple(normalization["channels"])
        self.augmenter = Augmenter(config.data.augment, self.channels)
        self.gpu = GpuSettings.resolve(ctx.device, bf16=config.run.bf16, channels_last=config.model.channels_last,
                                       deterministic=config.data.deterministic)
        self.gpu.apply()
        self.saver = BackgroundSaver(self.store)
        trained = [p for b in blocks for p in b.phases if p.is_training and p.stage.epochs > 0]
        self.final_phase = trained[-1].name if trained else None
        self.epochs_total = sum(p.stage.epochs for p in trained)  # the whole run's, for the driver's time left
        self.code = code_version()  # what this worker imported: on a cluster, the submitted copy

    def run(self, block: Block) -> None:
        try:
            self._run(block)
        finally:
            self.saver.wait()  # the last checkpoint is in storage before the worker returns

    def _run(self, block: Block) -> None:
        pointer = self.store.latest()
        start_index, start_epoch = resume_point(self.blocks, pointer, self.run_uri)
        phases = [p for p in block.phases if p.index >= start_index]
        if not phases:
            return
        resume_state = self.store.load() if pointer else None
        self.history = list(pointer["history"]) if pointer else []
        torch.manual_seed(self.config.run.seed)  # identical initial weights on every rank
        model_config = self.config.model if resume_state is None else dataclasses.replace(self.config.model, pretrained=None)
        # the weights the model started from, for the card: resolved here, or kept by the checkpoint
        if resume_state is None:
            weights = resolve_pretrained(self.config.model)
            self.pretrained = weights.record() if weights else None
        else:
            self.pretrained = resume_state.get("pretrained")
        self.model = build_model(model_config, self.channels)
        if resume_state is not None:
            self.model.load_state_dict(resume_state["model"])
        self.model.to(self.ctx.device)
        if self.gpu.channels_last:
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
        optimizer = _optimizer(stage, [p for p in model.parameters() if p.requires_grad], fused=self.gpu.fused_optimizer)
        run = self.config.run
        global_batch = self.config.data.batch_size * ctx.world_size
        schedule = Schedule(dataclasses.replace(stage, lr=scaled_lr(stage.lr, global_batch, run.lr_scaling, run.lr_reference_batch)))
        if resume_state is not None:
            optimizer.load_state_dict(resume_state["optimizer"])
            schedule.load_state_dict(resume_state["scheduler"])
        net = model
        if ctx.world_size > 1:
            device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            net = DistributedDataParallel(model, device_ids=device_ids)
        # model and loss compiled together (model.compile), or the plain forward
        loss_of = compiled_forward_loss(net, stage.loss, self.gpu, self.config.model.compile_backend) if self.config.model.compile else None
        for epoch in range(epoch0, stage.epochs):
            started = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = schedule.lr(epoch)
            epoch_key = phase.index * 10_000 + epoch  # distinct augmentation draws in every phase
            torch.manual_seed(_seed(self.config.run.seed, phase.name, epoch, ctx.rank))
            loss, patches = self._train_epoch(net, optimizer, stage, epoch_key, loss_of)
            train_seconds = time.perf_counter() - started
            schedule.epoch = epoch + 1
            metrics = {"phase": phase.name, "phase_epoch": epoch + 1, "phase_epochs": stage.epochs,
                       "epoch": len(self.history) + 1, "epochs_total": self.epochs_total,
                       "lr": schedule.lr(epoch), "train_loss": loss, "train_patches": patches,
                       "train_seconds": train_seconds, **self._evaluate("valid")}
            if ctx.has_split("holdout"):
                metrics.update(self._evaluate("holdout"))
            metrics["seconds"] = time.perf_counter() - started
            metrics["attempt"] = self.attempt
            if ctx.node_id:  # where rank 0 trained it: after a node is lost, where the run went on
                metrics["node"] = ctx.node_id
            self.history.append(metrics)
            done = epoch + 1 == stage.epochs
            metrics["run_complete"] = done and phase.name == self.final_phase  # tells a finished run from a stopped one
            if ctx.rank == 0 and (done or (epoch + 1) % self.config.run.checkpoint_every == 0):
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
                         "rng": {"torch": torch.get_rng_state(), "seed": self.config.run.seed},
                         "config": to_dict(self.config), "normalization": self.normalization,
                         "channels": list(self.channels), "history": self.history, "pretrained": self.pretrained,
                         "code_version": self.code}
                # uploaded while the next epoch trains; a phase's last checkpoint is waited for, and
                # only a checkpoint in storage is reported (what a search publishes as the best model)
                uri = self.saver.submit(state, phase=phase.name, epoch=epoch + 1, phase_done=done,
                                        history=self.history, keep=self.config.run.keep_checkpoints)
                if done:
                    self.saver.wait()
                    metrics["checkpoint"] = uri
            ctx.report(metrics)

    def _train_epoch(self, net, optimizer, stage: StageConfig, epoch_key: int, loss_of=None) -> tuple[float, int]:
        """Mean loss and number of patches, over all workers. The loss total stays on the device
        and is read once, at the end: nothing in a step waits for the GPU."""
        net.train()
        ctx, count = self.ctx, 0
        total = torch.zeros((), dtype=torch.float64, device=ctx.device)
        for batch in ctx.batches("train", epoch=epoch_key, batch_size=self.config.data.batch_size,
                                 augmenter=self.augmenter, shuffle=True, seed=self.config.run.seed):
            total += train_step(net, optimizer, batch, stage.loss, self.gpu, loss_of) * len(batch)
            count += len(batch)
        total, count = self.ctx.all_sum_tensor(torch.stack([total.cpu(), torch.tensor(float(count), dtype=torch.float64)])).tolist()
        return (total / count if count else float("nan")), int(count)

    @torch.no_grad()
    def _predict(self, image: torch.Tensor) -> torch.Tensor:
        with autocast(self.ctx.device, self.gpu.bf16):
            return self.model(to_memory_format(image, self.gpu.channels_last))["logits"].float()

    def _evaluate(self, split: str) -> dict[str, float]:
        """P/R/F1/IoU of the landslide class at argmax, and AP, best-threshold F1 and that threshold,
        from pixel counts kept on the device, summed over workers, read once."""
        self.model.eval()
        counts = DeviceCounts(self.ctx.device)
        for batch in self.ctx.batches(split, epoch=0, batch_size=self.config.data.eval_batch_size):
            counts.add(self._predict(batch.image), batch.mask)
        confusion, histogram = DeviceCounts.read(self.ctx.all_sum_tensor(counts.counts))
        best_f1, best_threshold = histogram.best_operating_point()  # the threshold: `jobs/predict.py --threshold card`
        return ({f"{split}_{k}": v for k, v in confusion.scores().items()} | {f"{split}_pixels": confusion.pixels}
                | {f"{split}_ap": histogram.average_precision(), f"{split}_best_f1": best_f1,
                   f"{split}_best_threshold": best_threshold})

    # -- self-training ----------------------------------------------------------------------
    def _pseudo_label(self, round_no: int) -> None:
        """The top-A% of each predicted class over every rank's unlabeled pixels, by a histogram
        threshold all-reduced across ranks (`swinls.top_percent`): each rank labels its own rows."""
        ctx, model = self.ctx, self.model
        model.eval()
        keys, predictions, bits = [], [], []
        for batch in ctx.batches("unlabeled", epoch=0, batch_size=self.config.data.eval_batch_size):
            predicted, margin = margin_bits(self._predict(batch.image))
            keys.append(batch.keys)
            predictions.append(predicted)
            bits.append(margin)
        # a rank may hold no unlabeled row (fewer rows than ranks); it still joins every all-reduce
        predicted = torch.cat(predictions) if predictions else torch.zeros((0, 1, 1), dtype=torch.uint8, device=ctx.device)
        bits = torch.cat(bits) if bits else torch.zeros((0, 1, 1), dtype=torch.int32, device=ctx.device)
        labels = keep_top_percent_distributed(predicted, bits, self.config.selftrain.top_percent, ctx.all_sum_tensor,
                                              ctx.rank, ctx.world_size).cpu().numpy()
        keys = torch.cat(keys).cpu().numpy() if keys else np.zeros(0, np.int64)
        selftrain.write_rank(self.run_uri, round_no, ctx.rank, keys, list(labels))
        counts = ctx.all_sum_tensor(torch.tensor([labels.size, (labels != selftrain.IGNORE).sum(), (labels == 1).sum(),
                                                  len(keys)], dtype=torch.float64)).tolist()
        ctx.barrier()
        if ctx.rank == 0:
            files = [f"rank-{r}.parquet" for r in range(ctx.world_size)]
            pixels = counts[0] or 1.0
            stats = {"top_percent": self.config.selftrain.top_percent, "rows": int(counts[3]),
                     "kept": counts[1] / pixels, "landslide": counts[2] / pixels}
            self._save_pngs(round_no, list(labels))  # rank 0's rows come first in the global order
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
    from swinls.config import from_dict
    from swinls.experiment_config import ExperimentConfig
    from swinls.training.context import RayContext
    from swinls.training.plan import plan

    from swinls.data.selection import ShardData
    from swinls.host_memory import keep_freed_memory

    keep_freed_memory()  # CPU batches reuse freed pages instead of faulting fresh ones in
    config = from_dict(ExperimentConfig, loop_config["experiment"])
    blocks = plan(config)
    resident = tuple(loop_config.get("resident", ()))
    ctx = RayContext(shuffle_buffer=config.data.shuffle_buffer, data=ShardData(config.data) if resident else None,
                     resident=resident, run_uri=loop_config["run_uri"],
                     train_with_round=blocks[loop_config["block"]].train_with_round)
    if loop_config.get("pid_file"):  # lets fault-tolerance tests find a worker to kill
        import os

        storage.write_bytes_atomic(f"{loop_config['pid_file']}-rank{ctx.rank}", str(os.getpid()).encode())
    run_block(config, loop_config["run_uri"], blocks, loop_config["block"], ctx, loop_config["normalization"])
