"""The plugins' CUDA kernels launched on torch's CUDA tensors, for `spotrt bench` on a GPU.

The kernels (compiled with NVRTC, cached) run on the torch stream in the primary context torch uses,
reading and writing torch tensors through their device pointers, so the same inputs feed the kernel
and its PyTorch equivalent. The pipeline with kernels pools with the VarRoIPool kernel, encodes with
the model's region encoder (as Spotter.regions does after pooling) and decodes with the AttnDecoder
kernel; everything else is the torch pipeline.
"""

from __future__ import annotations

import numpy as np
import torch

from ..model.roi_pool import var_roi_pool
from ..plugins import nvrtc
from ..plugins.attn_decoder import launch as dec_launch
from ..plugins.attn_decoder import spec as dec_spec
from ..plugins.attn_decoder.reference import WEIGHT_NAMES
from ..plugins.var_roi_pool import launch as roi_launch
from ..plugins.var_roi_pool import spec as roi_spec
from .timing import no_lap


def _ptr(t: torch.Tensor) -> np.uint64:
    return np.uint64(t.data_ptr())


class KernelRunner:
    def __init__(self, pipe) -> None:
        self.pipe, self.model, self.cfg = pipe, pipe.model, pipe.cfg
        nvrtc.use_primary_context()
        arch = nvrtc.device_arch()
        self._modules = [nvrtc.CudaModule(nvrtc.compile_kernel(s.SPEC.kernel_source(), arch, kind="cubin"))
                         for s in (roi_spec, dec_spec)]
        self._pool_fn = self._modules[0].function(roi_spec.KERNEL_NAME)
        self._dec_fn = self._modules[1].function(dec_spec.KERNEL_NAME)
        state = self.model.decoder.state_dict()
        self._weights = [state[k].detach().float().contiguous() for k in WEIGHT_NAMES]
        c = self.cfg
        self._roi_attrs = {"stride": c.rec_stride, "pooled_height": c.roi_height, "max_width": c.roi_max_width}
        self._dec_attrs = {"max_len": c.max_word_len, "start_token": c.start_token, "num_classes": c.num_classes}

    @staticmethod
    def _stream() -> int:
        return torch.cuda.current_stream().cuda_stream

    @torch.no_grad()
    def region_inputs(self, frame) -> dict:
        """The tensors both implementations take, for one frame."""
        pipe = self.pipe
        x = pipe.to_input([pipe.prepare_one(frame)[0]])
        rec_feats, proposals, count = pipe.model.proposals_of(x)
        _, rois, bidx = pipe.model.valid_regions(proposals, count)
        rois = rois.contiguous()
        memory, mask, holistic, widths = self.model.regions(rec_feats, rois, bidx)
        return {"features": rec_feats.contiguous(), "rois": rois, "bidx": bidx, "memory": memory.contiguous(),
                "mask": mask, "holistic": holistic.contiguous(), "widths": widths}

    def pool_kernel(self, inp: dict, stride: int | None = None):
        f, rois = inp["features"], inp["rois"]
        bidx = inp["bidx"].to(torch.int32)
        attrs = self._roi_attrs if stride is None else dict(self._roi_attrs, stride=int(stride))
        grid, block, scalars = roi_launch.launch([f.shape, rois.shape, bidx.shape], attrs)
        n = rois.shape[0]
        pooled = torch.empty((n, f.shape[1], self.cfg.roi_height, self.cfg.roi_max_width), device=f.device)
        widths = torch.empty(n, dtype=torch.int32, device=f.device)
        if n:
            nvrtc.launch(self._pool_fn, grid, block, [_ptr(f), _ptr(rois), _ptr(bidx), _ptr(pooled), _ptr(widths),
                                                      *scalars], stream=self._stream())
        return pooled, widths

    def pool_torch(self, inp: dict):
        c = self.cfg
        return var_roi_pool(inp["features"], inp["rois"], inp["bidx"], c.rec_stride, c.roi_height, c.roi_max_width)

    def decode_kernel(self, inp: dict, memory=None, widths=None, holistic=None):
        memory = inp["memory"] if memory is None else memory.contiguous()
        holistic = inp["holistic"] if holistic is None else holistic.contiguous()
        widths = (inp["widths"] if widths is None else widths).to(torch.int32)
        shapes = [memory.shape, widths.shape, holistic.shape] + [w.shape for w in self._weights]
        n, t = memory.shape[0], self.cfg.max_word_len
        tokens = torch.zeros((n, t), dtype=torch.int32, device=memory.device)
        probs = torch.ones((n, t), device=memory.device)
        if n:
            grid, block, shm, scalars = dec_launch.launch(shapes, self._dec_attrs)
            ws = torch.empty(max(1, dec_launch.workspace(shapes, self._dec_attrs) // 4), device=memory.device)
            ptrs = [_ptr(a) for a in (memory, widths, holistic, *self._weights, tokens, probs, ws)]
            nvrtc.launch(self._dec_fn, grid, block, ptrs + list(scalars), shared_bytes=shm, stream=self._stream())
        return tokens, probs

    def decode_torch(self, inp: dict):
        return self.model.decoder.greedy(inp["memory"], inp["mask"], inp["holistic"])

    @torch.no_grad()
    def run_with_kernels(self, images, lap=no_lap):
        """Frames -> words with both plugin kernels in the torch pipeline (every pass of a pyramid model)."""
        pipe = self.pipe
        xs, lbs = zip(*(pipe.prepare_one(im) for im in images))
        x = pipe.to_input(list(xs))

        def pool(features, rois, bidx, stride):
            return self.pool_kernel({"features": features.contiguous(), "rois": rois.contiguous(), "bidx": bidx},
                                    stride)

        passes, d = pipe._detect(x, no_lap, pool=pool)
        tokens, probs = self.decode_kernel({}, d.memory, d.mask.sum(dim=1), d.holistic)
        raw = pipe.outputs(passes, d, tokens, probs)
        return pipe.postprocess(raw, lbs)

    @torch.no_grad()
    def agreement(self, inp: dict) -> tuple[float, float]:
        """(max |pooled kernel - torch|, share of regions with equal tokens)."""
        pk, _ = self.pool_kernel(inp)
        pt, _ = self.pool_torch(inp)
        tk, _ = self.decode_kernel(inp)
        tt, _ = self.decode_torch(inp)
        torch.cuda.synchronize()
        diff = float((pk - pt).abs().max()) if pk.numel() else 0.0
        same = float((tk.long() == tt).all(dim=1).float().mean()) if tk.numel() else 1.0
        return diff, same

    def close(self) -> None:
        for mod in self._modules:
            mod.close()
