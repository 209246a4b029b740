"""`predict(model, input, output)`: a Landslide4Sense split or georeferenced scenes, in this
process or as Ray Data batch inference. What `jobs/predict.py` calls."""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass, field

from swinls import storage
from swinls.bands import BANDS
from swinls.metrics import Confusion
from swinls.patches import PatchError
from swinls.prediction.engine import Work, run_in_process, run_with_ray, user_error
from swinls.prediction.errors import PredictionError
from swinls.prediction.model import PATCH_SIZE, Decision, LoadedModel, decision_for, load_for_prediction
from swinls.prediction.outputs import StagedFiles, StagedFolder, check_output, published_folder, refuse_existing
from swinls.prediction.progress import Progress
from swinls.prediction.rasters import SCENE_SUFFIXES, inspect_product, inspect_scene, list_scenes
from swinls.products import is_product
from swinls.prediction.cog import to_cog
from swinls.prediction.quicklook import QUICKLOOK_SUFFIX, write_quicklook
from swinls.prediction.scenes import MASK_NODATA, SceneAssembly, SceneWindows
from swinls.prediction.stac_items import ModelFacts, scene_item, write_items
from swinls.prediction.splits import SubmissionWriter, SplitPatches, find_images, split_folders
from swinls.prediction.windows import WindowGrid

METRICS = "metrics.json"


@dataclass(frozen=True)
class PredictOptions:
    threshold: str = "argmax"  # argmax, card (the validation's best-F1 threshold in the card) or a probability
    overwrite: bool = False
    probability: bool = False  # scenes: also write P(landslide)
    overlap: int = PATCH_SIZE // 4  # scenes: pixels shared by neighbouring windows
    batch_size: int | None = None  # patches or windows per model call (default 16 on CPU, 128 on a GPU)
    use_gpu: bool = False
    bf16: bool | None = None  # default: on with a GPU
    ray: bool = False  # Ray Data batch inference instead of this process
    actors: int | None = None  # model actors (default: one per GPU, or as many CPUs allow)
    cpus_per_actor: float | None = None
    progress_every: float = 5.0  # seconds between progress lines
    elevation: str | None = None  # Sentinel-2 products: the elevation raster slope and DEM come from

    def __post_init__(self) -> None:
        if not 0 <= self.overlap < PATCH_SIZE:
            raise PredictionError("--overlap", f"must be at least 0 and less than the window, {PATCH_SIZE} px; got {self.overlap}")
        if self.batch_size is not None and self.batch_size < 1:
            raise PredictionError("--batch-size", f"must be at least 1, got {self.batch_size}")

    @property
    def batch(self) -> int:
        return self.batch_size or (128 if self.use_gpu else 16)


@dataclass
class PredictionReport:
    kind: str  # "split" or "scenes"
    output: str
    files: list[str]
    metrics: dict | None
    count: int  # patches or windows predicted
    seconds: float
    throughput: str  # for people: "484 windows in 3.2 s (151.2 windows/s)"
    per_scene: dict = field(default_factory=dict)


def predict(model_uri: str, input_uri: str, output_uri: str, options: PredictOptions = PredictOptions(),
            log=print) -> PredictionReport:
    """Raises PredictionError or PatchError, naming the file and what is wrong, for bad input;
    nothing is left at `output_uri` unless everything was written."""
    for uri in (model_uri, input_uri):
        storage.check_uri(uri)
    check_output(output_uri, {"INPUT": input_uri, "MODEL": _model_folder(model_uri)})  # before anything is loaded
    refuse_existing(output_uri, options.overwrite)
    # the driver only reads the card and checks the model when actors do the work
    loaded = load_for_prediction(model_uri, use_gpu=options.use_gpu and not options.ray, bf16=options.bf16)
    decision = decision_for(options.threshold, loaded.card, f"{loaded.uri}/model_card.json")
    log(f"model: {loaded.uri} ({', '.join(loaded.normalizer.inputs)}; {decision.label})")
    if split_folders(input_uri) is not None:
        return predict_split(loaded, decision, input_uri, output_uri, options, log)
    return predict_scenes(loaded, decision, input_uri, output_uri, options, log)


def _model_folder(model_uri: str) -> str | None:
    """The folder that holds the model's files, for OUTPUT to keep clear of."""
    from swinls.published import resolve_published

    try:
        return published_folder(resolve_published(model_uri)[0])
    except (FileNotFoundError, storage.StorageError):
        return None  # not a model: loading it says so, before anything is written


def _protect(loaded: LoadedModel, input_uri: str) -> dict[str, str]:
    return {"INPUT": input_uri, "MODEL": published_folder(loaded.uri)}


def _run(work: Work, loaded: LoadedModel, sink, options: PredictOptions) -> Progress:
    progress = Progress(work.total, work.unit, options.progress_every)
    try:
        if options.ray:
            run_with_ray(work, loaded.uri, sink, progress, use_gpu=options.use_gpu, bf16=options.bf16,
                         actors=options.actors, cpus_per_actor=options.cpus_per_actor)
        else:
            run_in_process(work, loaded.predictor, sink, progress)
    except Exception as exc:
        cause = user_error(exc, (PredictionError, PatchError))
        if cause is not None and cause is not exc:
            raise cause from None  # a bad file, not a Ray failure: say which and why
        raise
    return progress


def _summary(loaded: LoadedModel, decision, input_uri: str, kind: str, progress: Progress, options, **extra) -> dict:
    from swinls.published import code_version

    device = "cuda" if options.use_gpu else "cpu"
    return {"model": loaded.uri, "experiment": loaded.card.experiment, "trial": loaded.card.trial,
            "input": input_uri, "kind": kind, "bands": list(loaded.normalizer.inputs), "decision": decision.label,
            "units": progress.unit, "count": progress.done, "seconds": round(progress.elapsed, 3),
            "ray": options.ray, "device": device, "code_version": code_version(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **extra}


def _model_facts(loaded: LoadedModel, decision: Decision) -> ModelFacts:
    return ModelFacts(loaded.uri, f"{loaded.uri}/model_card.json", loaded.uri.rstrip("/").rsplit("/", 1)[-1],
                      tuple(loaded.normalizer.inputs), decision.label, decision.threshold, loaded.card.experiment, loaded.card.trial)


def _write_json(path, payload) -> None:
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")


def predict_split(loaded: LoadedModel, decision: Decision, input_uri: str, output_uri: str,
                  options: PredictOptions = PredictOptions(), log=print) -> PredictionReport:
    """One mask_N.h5 per image_N.h5, submission.zip, and metrics.json when the split is labelled."""
    images = find_images(input_uri)
    log(f"split: {len(images)} patches in {split_folders(input_uri)[0]}"
        + (", with masks" if all(i.mask for i in images) else ""))
    output = StagedFolder(output_uri, options.overwrite, _protect(loaded, input_uri), log)
    try:
        indices = tuple(BANDS.index(b) for b in loaded.normalizer.inputs)
        reader = SplitPatches(images, loaded.normalizer, indices, options.batch)
        writer = SubmissionWriter(images, decision, output)
        progress = _run(Work("patches", len(images), reader.chunks, reader, options.batch), loaded, writer, options)
        metrics = writer.finish()
        if metrics is not None:
            _write_json(output.path(METRICS), dict(metrics, model=loaded.uri, input=input_uri, decision=decision.label))
        summary = _summary(loaded, decision, input_uri, "split", progress, options,
                           metrics={k: v for k, v in metrics.items() if k != "per_image"} if metrics else None)
        files = output.commit(summary)
    except BaseException:
        output.abort()
        raise
    return PredictionReport("split", output_uri, files, metrics, progress.done, progress.elapsed, progress.finish())


def predict_scenes(loaded: LoadedModel, decision: Decision, input_uri: str, output_uri: str,
                   options: PredictOptions = PredictOptions(), log=print) -> PredictionReport:
    """A mask GeoTIFF (and the probability) per scene; metrics.json for scenes with labels beside them."""
    needed = loaded.normalizer.inputs
    if is_product(input_uri):  # a STAC item, a SAFE folder, a folder of per-band files: one scene
        infos = [inspect_product(input_uri, needed, loaded.card.input_units, options.elevation)]
    else:
        infos = [inspect_scene(scene, needed, truth) for scene, truth in list_scenes(input_uri)]
    single_file = output_uri.lower().endswith(SCENE_SUFFIXES)
    if single_file and len(infos) > 1:
        raise PredictionError(output_uri, f"{input_uri} holds {len(infos)} scenes: OUTPUT must be a folder")
    grids = [WindowGrid(info.height, info.width, PATCH_SIZE, options.overlap) for info in infos]
    log(f"scenes: {len(infos)} ({sum(i.pixels for i in infos) / 1e6:.1f} Mpx, {sum(len(g) for g in grids)} windows of "
        f"{PATCH_SIZE} px overlapping by {options.overlap})")
    if single_file:
        stem = output_uri.rsplit(".", 1)[0]
        uris = {"mask": output_uri} | ({"probability": f"{stem}_probability.tif"} if options.probability else {})
        output = StagedFiles(uris, options.overwrite, _protect(loaded, input_uri))
        names = ("mask", "probability")
    else:
        output = StagedFolder(output_uri, options.overwrite, _protect(loaded, input_uri), log)
        names = ("{}_prediction.tif", "{}_probability.tif")

    def outputs(info):
        mask = output.path(names[0].format(info.name))
        return mask, output.path(names[1].format(info.name)) if options.probability else None

    per_scene: dict[str, Confusion | None] = {}
    items = []
    created = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    facts = None if single_file else _model_facts(loaded, decision)  # what a folder's STAC says of the model

    def done(info, writer) -> None:
        per_scene[info.name] = writer.confusion
        mask, chance = outputs(info)
        to_cog(mask, "mask")
        if chance is not None:
            to_cog(chance, "probability")
        if not single_file:  # a folder gets the pictures and the STAC that a batch is browsed by
            assets = {"mask": mask.name} | ({"probability": chance.name} if chance is not None else {})
            picture = output.path(f"{info.name}{QUICKLOOK_SUFFIX}")
            write_quicklook(info, mask, picture, MASK_NODATA)
            items.append(scene_item(info, facts, assets | {"quicklook": picture.name}, created))

    reader = SceneWindows(infos, grids, loaded.normalizer, options.batch)
    assembly = SceneAssembly(reader, decision, outputs, done)
    try:
        progress = _run(Work("windows", reader.total, reader.chunks, reader, options.batch), loaded, assembly, options)
        assembly.close()
        labelled = {name: c for name, c in per_scene.items() if c is not None}
        metrics = None
        if labelled:
            total = sum(labelled.values(), Confusion())
            metrics = {"scenes": len(labelled), "pixels": total.pixels, **asdict(total), **total.scores(),
                       "per_scene": {name: {**asdict(c), **c.scores()} for name, c in labelled.items()}}
        if single_file:
            files = output.commit()
        else:
            if metrics is not None:
                _write_json(output.path(METRICS), dict(metrics, model=loaded.uri, input=input_uri, decision=decision.label))
            write_items(output.staging, items, f"landslides-{facts.version}",
                        f"Landslides predicted by {loaded.uri} ({decision.label}) for {input_uri}")
            files = output.commit(_summary(
                loaded, decision, input_uri, "scenes", progress, options, overlap=options.overlap,
                scenes=[{"scene": i.uri, "height": i.height, "width": i.width, "crs": i.crs is not None} for i in infos],
                metrics={k: v for k, v in metrics.items() if k != "per_scene"} if metrics else None))
    except BaseException:
        assembly.abort()
        output.abort()
        raise
    return PredictionReport("scenes", output_uri, files, metrics, progress.done, progress.elapsed, progress.finish(),
                            per_scene={n: c.scores() for n, c in per_scene.items() if c is not None})
