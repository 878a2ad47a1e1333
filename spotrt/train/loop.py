"""The training loop: multi-task loss, curriculum, safetensors checkpoints, resume, loss log."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from tqdm import tqdm

from ..errors import SpotrtError
from ..fileio import ensure_dir, write_bytes_atomic
from ..model.config import SpotterConfig
from ..model.spotter import Spotter
from ..model.targets import anchor_targets, encode_text, jitter_boxes, region_targets
from ..model.weights import atomic_save, config_of, init_matching, load_weights, save_weights
from .batches import Batch, BatchMaker
from .config import TrainConfig, changed_settings, checkpoint_extra, parse_curriculum, stored_settings

CTC_WEIGHT = 0.5


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SpotrtError(f"device {name}: CUDA is not available here, expected 'cpu' or 'auto'")
    return torch.device(name)


def losses(model: Spotter, batch: Batch, gen: torch.Generator, rec_per_image: int,
           rec_per_mosaic: int = 32, label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
    """The paper's multi-task loss: proposals, detection and recognition, on one batch."""
    cfg = model.cfg
    dev = batch.images.device
    feats, rec_feats = model.features(batch.images)
    n_scenes = batch.num_scenes
    img_h, img_w = batch.images.shape[2:]
    if n_scenes:
        logits, deltas = model.tpn(feats[:n_scenes])
        logits, deltas = logits.float(), deltas.float()
    anchors = model.anchors(feats.shape[2], feats.shape[3], torch.device("cpu"))

    # proposal network: sampled anchors
    cls_l, reg_l, n_cls = [], [], 0
    for i in range(n_scenes):
        labels, reg_t = anchor_targets(anchors, batch.boxes[i], gen, ignore=batch.ignore_of(i))
        labels, reg_t = labels.to(dev), reg_t.to(dev)
        sel = labels >= 0
        pos = labels == 1
        cls_l.append(F.binary_cross_entropy_with_logits(logits[i][sel], labels[sel].float(), reduction="sum"))
        reg_l.append(F.smooth_l1_loss(deltas[i][pos], reg_t[pos], beta=1 / 9, reduction="sum"))
        n_cls += int(sel.sum())
    zero = feats.sum() * 0  # a loss with no terms (a recognition-only batch has no scenes)
    n_cls = max(n_cls, 1)
    out = {"tpn_cls": torch.stack(cls_l).sum() / n_cls if cls_l else zero,
           "tpn_reg": torch.stack(reg_l).sum() / n_cls if reg_l else zero}

    # regions: proposals (no gradient into the TPN through them) plus jittered words
    if n_scenes:
        proposals, _, count = model.propose(logits.detach(), deltas.detach(), anchors.to(dev), img_h, img_w)
    det_rois, det_labels, det_reg, rec_rois, rec_targets, det_bidx, rec_bidx = [], [], [], [], [], [], []
    for i in range(batch.images.shape[0]):
        gt = batch.boxes[i]
        texts = batch.texts[i]
        if i < n_scenes:
            rois = torch.cat([proposals[i, : count[i]].cpu(), gt, jitter_boxes(gt, gen, 2)])
            labels, reg_t, match, iou = region_targets(rois, gt, gen, ignore=batch.ignore_of(i))
            sel = labels >= 0
            det_rois.append(rois[sel])
            det_labels.append(labels[sel])
            det_reg.append(reg_t[sel])
            det_bidx.append(torch.full((int(sel.sum()),), i, dtype=torch.long))
            cand = torch.nonzero(iou >= 0.65).flatten()
        else:  # mosaic: recognition only, on jittered crop boxes
            rois = torch.cat([gt, jitter_boxes(gt, gen, 1, amount=0.08)])
            match = torch.arange(len(gt)).repeat(2) if len(gt) else torch.zeros(0, dtype=torch.long)
            cand = torch.arange(len(rois))
        cand = cand[torch.randperm(len(cand), generator=gen)]
        taken = 0
        for r in cand.tolist():
            t = encode_text(texts[int(match[r])], cfg.charset, cfg.max_word_len)
            if t is None:
                continue
            rec_rois.append(rois[r])
            rec_targets.append(t)
            rec_bidx.append(i)
            taken += 1
            if taken >= (rec_per_image if i < n_scenes else rec_per_mosaic):
                break
    det_rois = torch.cat(det_rois) if det_rois else torch.zeros((0, 4))
    n_det = det_rois.shape[0]
    rec_rois_t = torch.stack(rec_rois) if rec_rois else torch.zeros((0, 4))
    all_rois = torch.cat([det_rois, rec_rois_t]).to(dev)
    all_bidx = torch.cat([*det_bidx, torch.tensor(rec_bidx, dtype=torch.long)]).to(dev)
    if all_rois.shape[0] == 0:
        return {**out, "det_cls": zero, "det_reg": zero, "rec": zero, "ctc": zero}
    memory, mask, holistic, widths = model.regions(rec_feats, all_rois, all_bidx)
    memory, holistic = memory.float(), holistic.float()

    if n_det:
        det_logit, det_delta = model.detector(holistic[:n_det])
        labels = torch.cat(det_labels).to(dev)
        reg_t = torch.cat(det_reg).to(dev)
        pos = labels == 1
        out["det_cls"] = F.binary_cross_entropy_with_logits(det_logit, labels.float())
        out["det_reg"] = F.smooth_l1_loss(det_delta[pos], reg_t[pos], beta=1.0, reduction="sum") / n_det
    else:
        out["det_cls"] = out["det_reg"] = zero
    if rec_targets:
        targets = torch.stack(rec_targets).to(dev)
        rec_logits = model.decoder(memory[n_det:], mask[n_det:], holistic[n_det:], targets.clamp(min=0))
        out["rec"] = F.cross_entropy(rec_logits.reshape(-1, cfg.num_classes).float(), targets.reshape(-1),
                                     ignore_index=-100, label_smoothing=label_smoothing)
        # auxiliary CTC over the region's columns; targets are the characters (ids >= 1)
        log_probs = F.log_softmax(model.ctc(memory[n_det:]), dim=-1).transpose(0, 1)
        lengths = (targets > 0).sum(dim=1)
        out["ctc"] = CTC_WEIGHT * F.ctc_loss(log_probs, targets.clamp(min=0), widths[n_det:], lengths,
                                              blank=0, reduction="mean", zero_infinity=True)
    else:
        out["rec"] = out["ctc"] = zero
    return out


def checkpoint_step(path) -> int:
    """The training step a checkpoint was saved at (its metadata), 0 for weights without one."""
    return int(checkpoint_extra(path).get("step", 0))


def _lr_at(step: int, tc: TrainConfig) -> float:
    if step < tc.warmup:
        return tc.lr * (step + 1) / tc.warmup
    progress = (step - tc.warmup) / max(1, tc.steps - tc.warmup)
    return tc.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _save_checkpoint(out: Path, model: Spotter, opt: torch.optim.Optimizer, step: int, tc: TrainConfig) -> None:
    # the run's settings go with its weights-only checkpoint, so --continue-from on another machine needs no flags
    save_weights(model, out / "last.safetensors", extra={"step": step, "train": asdict(tc)})
    tensors, layout = {}, {}
    for pid, st in opt.state_dict()["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val):
                tensors[f"{pid}.{name}"] = val
            else:
                layout[f"{pid}.{name}"] = val
    atomic_save(tensors, out / "last.optim.safetensors", {"scalars": json.dumps(layout), "step": str(step)})
    write_bytes_atomic(out / "state.json", json.dumps({"step": step, "train": asdict(tc)}, indent=1).encode(),
                       "training state")


def _load_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    sd = opt.state_dict()
    with safe_open(str(path), framework="pt") as f:
        scalars = json.loads(f.metadata()["scalars"])
        state: dict = {}
        for key in f.keys():
            pid, name = key.split(".", 1)
            state.setdefault(int(pid), {})[name] = f.get_tensor(key)
        for key, val in scalars.items():
            pid, name = key.split(".", 1)
            state.setdefault(int(pid), {})[name] = val
    sd["state"] = state
    opt.load_state_dict(sd)


def train(tc: TrainConfig, resume: bool = False) -> Path:
    """Train (or resume) into tc.out; returns the path of the final weights."""
    tc.check(resume)
    out = ensure_dir(tc.out, "train --out")
    device = _device(tc.device)
    if device.type == "cuda" and tc.workers and "OMP_NUM_THREADS" not in os.environ:
        # on a GPU the step's CPU side is small-tensor work (targets, sampling); torch's default of one
        # thread per core fights the data workers for the cores: on a 16-core H200 host, 14 workers,
        # 1.65 steps/s with the default and 4.6 with 2 threads (benchmarks/README.md, training on a GPU)
        torch.set_num_threads(2)
    torch.manual_seed(tc.seed)
    fresh_optimizer = False
    start = 0
    stored = stored_settings(tc.out, resume, tc.continue_from)
    if stored:  # what differs from the run's own settings is said, never silent
        for line in changed_settings(stored[0], tc):
            tqdm.write(f"train: going on from {stored[1]} with {line}")
    if tc.continue_from and not (resume and (out / "state.json").exists()):
        # another machine: the run's weights-only checkpoint and the step it was saved at; the data
        # stream and learning-rate schedule go on from that step, AdamW's moments start afresh
        model = load_weights(tc.continue_from)
        start = checkpoint_step(tc.continue_from)
        if start >= tc.steps:
            raise SpotrtError(f"train --continue-from {tc.continue_from}: found step {start}, expected fewer than --steps {tc.steps}")
        fresh_optimizer = True
    elif resume and (out / "state.json").exists():
        state = json.loads((out / "state.json").read_text())
        start = int(state["step"])
        if start > tc.steps:  # at --steps it is done: nothing to train, its weights are returned
            raise SpotrtError(f"train --resume {out}: found the run at step {start}, expected at most --steps {tc.steps}")
        model = load_weights(out / "last.safetensors")
    elif tc.init:
        model = Spotter(config_of(tc.init).replace(**tc.model))
        fresh, widened = init_matching(model, tc.init)
        if widened:
            tqdm.write(f"init {tc.init}: {len(widened)} tensors widened, keeping what they had learned: "
                       + ", ".join(sorted({k.split('.')[0] for k in widened})))
        if fresh:
            tqdm.write(f"init {tc.init}: {len(fresh)} tensors do not fit and start fresh: "
                       + ", ".join(sorted({k.split('.')[0] for k in fresh})))
    else:
        model = Spotter(SpotterConfig(**tc.model))
    model.to(device).train()
    if tc.qat:  # INT8 rounding in the forward pass of the layers calibration quantizes (train/qat.py)
        from .qat import QAT

        qat = QAT(model).attach()
        tqdm.write(f"qat: {len(qat.layers)} layers train with their INT8 rounding")
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    if start and not fresh_optimizer:
        _load_optimizer(opt, out / "last.optim.safetensors")
    cfg = model.cfg
    maker = BatchMaker(cfg, tc.seed, tc.batch, tc.mosaics, tc.height, tc.width, parse_curriculum(tc.curriculum),
                       tc.real_crops, tc.real_fraction, cfg.max_word_len, cfg.charset,
                       mosaic_curriculum=parse_curriculum(tc.mosaic_curriculum or tc.curriculum),
                       augment=tc.augment, small_text=tc.small_text, real_scenes=tc.real_scenes,
                       scene_root=tc.scene_root, open_text=tc.open_text, backgrounds_root=tc.backgrounds,
                       paste_share=tc.paste_share, punctuation=tc.punctuation)
    loader = torch.utils.data.DataLoader(
        _Steps(maker, start, tc.steps), batch_size=None, num_workers=tc.workers,
        prefetch_factor=2 if tc.workers else None, collate_fn=lambda b: b, worker_init_fn=_worker_init,
    )
    log_path = out / "log.jsonl"
    if start and log_path.exists():  # drop lines past the checkpoint we resume from
        lines = [ln for ln in log_path.read_text().splitlines() if ln and json.loads(ln)["step"] < start]
        log_path.write_text("".join(ln + "\n" for ln in lines))
    gen = torch.Generator()
    bar = tqdm(total=tc.steps, initial=start, desc="train", unit="step", dynamic_ncols=True)
    t0 = time.time()
    with open(log_path, "a") as log:
        for step, batch in zip(range(start, tc.steps), loader):
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, tc)
            gen.manual_seed(tc.seed * 1_000_003 + step)  # per step: a resumed run samples the same targets
            batch.images = batch.images.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=tc.bf16):
                parts = losses(model, batch, gen, tc.rec_per_image, tc.rec_per_mosaic, tc.label_smoothing)
            total = sum(parts.values())
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            rec = {k: round(float(v.detach()), 4) for k, v in parts.items()}
            log.write(json.dumps({"step": step, "loss": round(float(total.detach()), 4), **rec,
                                  "lr": round(_lr_at(step, tc), 6), "time": round(time.time() - t0, 1)}) + "\n")
            log.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{float(total.detach()):.3f}", rec=f"{rec['rec']:.3f}", det=f"{rec['det_cls']:.3f}")
            if (step + 1) % tc.checkpoint_every == 0 or step + 1 == tc.steps:
                model.eval()
                _save_checkpoint(out, model, opt, step + 1, tc)
                model.train()
    bar.close()
    return out / "last.safetensors"


def _worker_init(_worker_id: int) -> None:
    """A data worker is one process among several: OpenCV's own thread pool (one thread per core by
    default) would oversubscribe the cores that the other workers and the training step use."""
    import cv2

    cv2.setNumThreads(1)


class _Steps(torch.utils.data.Dataset):
    def __init__(self, maker: BatchMaker, start: int, stop: int) -> None:
        self.maker, self.start, self.stop = maker, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> Batch:
        return self.maker(self.start + i)
