"""Expected frames/s on Jetson Orin modules from measured FLOPs and bytes per stage: ESTIMATES.

A roofline per stage: time = max(FLOPs / (peak x EFFICIENCY), bytes / (bandwidth x EFFICIENCY)),
summed over the network's stages (preprocess and postprocess run on the Jetson's CPU and are not
modelled). The convolutional stages run at the chosen precision; RoI pooling and the decoder run in
the FP32 plugin kernels, so they get the FP32 peak. Bytes are the FP32 tensor bytes of the ops an
engine keeps after fusing pointwise and batch-norm ops into their producers (workloads.CostCounter,
`bytes_fused`), scaled by the element size of the precision. EFFICIENCY is an assumption, not a
measurement: small layers (64-128 channels) and a 16-step recurrent decoder stay far from peak.
Measure on the device (`spotrt bench --backend tensorrt`) before relying on these numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

EFFICIENCY = 0.3
FP32_STAGES = ("roi_pooling", "decoder")           # the plugins' kernels are float32
BYTE_SCALE = {"fp32": 1.0, "fp16": 0.5, "int8": 0.25}
JETSON_PRECISIONS = ("fp16", "int8")


@dataclass(frozen=True)
class DevicePeak:
    """Published peaks of one device's GPU (dense: without 2:4 structured sparsity)."""

    name: str
    int8_tops: float       # dense INT8 tensor-core TOPS
    fp16_tflops: float     # dense FP16 tensor-core TFLOPS
    fp32_tflops: float     # CUDA-core FP32 TFLOPS
    bandwidth_gbs: float   # DRAM bandwidth, GB/s
    source: str

    def peak(self, precision: str) -> float:
        """Operations per second at `precision`."""
        return {"int8": self.int8_tops, "fp16": self.fp16_tflops, "fp32": self.fp32_tflops}[precision] * 1e12


# NVIDIA publishes the GPU's sparse INT8 TOPS, its CUDA and Tensor Core counts, its maximum clock and
# the memory bandwidth (module data sheets; developer.nvidia.com/embedded/jetson-modules). Dense INT8
# = sparse / 2; dense FP16 = dense INT8 / 2 (Ampere tensor cores); FP32 = 2 x CUDA cores x clock.
# Module defaults before the JetPack 6.2 "Super" modes (which raise Orin Nano to 67 sparse TOPS and
# 102 GB/s, Orin NX 16GB to 157 TOPS in all).
JETSON = (
    DevicePeak("Jetson Orin Nano 8GB", 20.0, 10.0, 1.28, 68.0,
               "Jetson Orin Nano Series Data Sheet: GPU 40 sparse INT8 TOPS, 1024 CUDA / 32 Tensor Cores at "
               "625 MHz, 128-bit LPDDR5 68 GB/s"),
    DevicePeak("Jetson Orin NX 16GB", 30.0, 15.0, 1.88, 102.4,
               "Jetson Orin NX Series Data Sheet: 100 sparse INT8 TOPS (GPU 60 + 2 DLA 40), 1024 CUDA / 32 "
               "Tensor Cores at 918 MHz, 128-bit LPDDR5 102.4 GB/s"),
    DevicePeak("Jetson AGX Orin 64GB", 85.0, 42.5, 5.3, 204.8,
               "Jetson AGX Orin Series Data Sheet and Technical Brief: GPU 170 sparse INT8 TOPS, 5.3 FP32 TFLOPS, "
               "2048 CUDA / 64 Tensor Cores at 1.3 GHz, 256-bit LPDDR5 204.8 GB/s"),
)

# GPUs a bench may run on, for the achieved fraction of peak (FP32: torch computes in float32).
# Vendor data sheets (NVIDIA A100, H100, H200). Unknown devices, and every CPU, report no fraction.
HOST_GPUS = (
    ("H100 PCIe", DevicePeak("H100 PCIe", 1513.0, 756.0, 51.0, 2000.0, "NVIDIA H100 data sheet (PCIe)")),
    ("H100", DevicePeak("H100 SXM", 1979.0, 989.0, 67.0, 3350.0, "NVIDIA H100 data sheet (SXM)")),
    ("H200", DevicePeak("H200 SXM", 1979.0, 989.0, 67.0, 4800.0, "NVIDIA H200 data sheet (SXM)")),
    ("A100", DevicePeak("A100", 624.0, 312.0, 19.5, 1555.0, "NVIDIA A100 data sheet (40GB)")),
)


def host_peak(device_name: str | None) -> DevicePeak | None:
    """The peaks of the GPU named `device_name` where this table knows it, else None."""
    for key, peak in HOST_GPUS:
        if device_name and key in device_name:
            return peak
    return None


def roofline(stages: dict, device: DevicePeak, precision: str, efficiency: float = EFFICIENCY) -> dict:
    """Estimated network time of one frame on `device`, from {stage: {flops, bytes}} per frame."""
    from .workloads import HOST_STAGES

    total, bound = 0.0, {}
    for name, cost in stages.items():
        if name in HOST_STAGES:
            continue
        p = "fp32" if name in FP32_STAGES else precision
        compute = cost["flops"] / (device.peak(p) * efficiency)
        memory = cost["bytes_fused"] * BYTE_SCALE[p] / (device.bandwidth_gbs * 1e9 * efficiency)
        total += max(compute, memory)
        bound[name] = "compute" if compute >= memory else "memory"
    return {"ms_per_frame": total * 1e3, "frames_per_s": 1.0 / total if total else None, "bound": bound}


def estimates(runs: list[dict], efficiency: float = EFFICIENCY) -> dict:
    """The Jetson table for every input size measured with the torch cost model."""
    rows, seen = [], set()
    for run in runs:
        key = tuple(run["input_size"])
        if key in seen or not run["cost"]["stages"]:
            continue
        seen.add(key)
        for dev in JETSON:
            for prec in JETSON_PRECISIONS:
                est = roofline(run["cost"]["stages"], dev, prec, efficiency)
                rows.append({"device": dev.name, "precision": prec, "input_size": list(key), **est})
    return {"estimate": True, "efficiency": efficiency,
            "model": "per stage max(FLOPs / (peak x efficiency), bytes / (bandwidth x efficiency)), summed; "
                     "RoI pooling and decoder at FP32 (plugin kernels); preprocess/postprocess not included",
            "devices": [asdict(d) for d in JETSON], "rows": rows}
