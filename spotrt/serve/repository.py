"""`spotrt export --triton-repo DIR`: a model repository for a stock Triton Inference Server.

    DIR/spotrt/config.pbtxt        Python backend, spotrt's tensors (spotrt.formats.triton),
                                   max batch, dynamic batching, instance group
    DIR/spotrt/1/model.py          spotrt.serve.triton_model: loads the model through spotrt
    DIR/spotrt/1/model.onnx        the exported graph (CPU instances, spotrt's ONNX Runtime backend),
      or model.engine + .json      a TensorRT engine and its stamp (GPU instances)

Start it with `tritonserver --model-repository DIR` in a Triton container whose Python has spotrt
installed; clients are `spotrt run --server grpc://host:8001`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import SpotrtError
from ..formats import triton as tensors

MODEL_PY = Path(__file__).with_name("triton_model.py")


def _dims(t: tensors.TensorSpec) -> str:
    return ", ".join(str(d) for d in t.dims)


def instances_spin(instances: int) -> bool:
    """Whether ONNX Runtime's idle threads spin (its default) for `instances` model instances that run at
    once: only for one; several spinning sessions take the cores the others compute on (1.2x frames/s for
    two instances on 2 cores with spinning off: benchmarks/ort_instances.py). `serve` and a repository's
    config.pbtxt both follow it."""
    return instances == 1


def config_pbtxt(name: str, model_file: str, max_batch: int, queue_delay_us: int, instances: int, gpu: bool,
                 threads: int | None = None) -> str:
    """The model configuration (protobuf text) of a spotrt model in a repository."""
    def specs_text(specs) -> str:
        return ",\n".join(f'  {{ name: "{t.name}" data_type: TYPE_{"STRING" if t.datatype == "BYTES" else t.datatype}'
                          f" dims: [ {_dims(t)} ] }}" for t in specs)

    params = [("spotrt_model", model_file)] + ([("spotrt_threads", str(threads))] if threads else [])
    if not gpu and not instances_spin(instances):  # model.py loads its session with spinning off
        params.append(("spotrt_spinning", "false"))
    return (f'name: "{name}"\nbackend: "python"\nmax_batch_size: {max_batch}\n'
            f"input [\n{specs_text(tensors.INPUTS)}\n]\noutput [\n{specs_text(tensors.OUTPUTS)}\n]\n"
            f"dynamic_batching {{ max_queue_delay_microseconds: {queue_delay_us} }}\n"
            f"instance_group [ {{ count: {instances} kind: {'KIND_GPU' if gpu else 'KIND_CPU'} }} ]\n"
            + "".join(f'parameters: {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n' for k, v in params))


def check_batching(max_batch: int, queue_delay_us: int, instances: int, command: str = "") -> None:
    """The Triton model's dynamic batching and instances (`spotrt serve` and `export --triton-repo`)."""
    flag = f"{command} " if command else ""
    if max_batch < 1:
        raise SpotrtError(f"{flag}--max-batch: found {max_batch}, expected a number of frames >= 1")
    if queue_delay_us < 0:
        raise SpotrtError(f"{flag}--queue-delay-us: found {queue_delay_us}, expected microseconds >= 0")
    if instances < 1:
        raise SpotrtError(f"{flag}--instances: found {instances}, expected a number of model instances >= 1")


def check_repo_settings(repo, model, max_batch: int, queue_delay_us: int, instances: int) -> None:
    """One clear line for a bad flag or model file, before anything is exported or written."""
    check_batching(max_batch, queue_delay_us, instances)
    p = Path(repo)
    if p.exists() and not p.is_dir():
        raise SpotrtError(f"--triton-repo {p}: found a file, expected a folder (new or a model repository)")
    if model is not None:
        m = Path(model)
        if not m.is_file():
            raise SpotrtError(f"--triton-model {m}: file not found, expected an exported .onnx or a TensorRT .engine")
        if m.suffix.lower() not in (".onnx", ".engine", ".plan"):
            raise SpotrtError(f"--triton-model {m}: found a {m.suffix or 'suffix-less'} file, expected an .onnx graph "
                              "or a TensorRT .engine")
        if m.suffix.lower() != ".onnx":
            from ..formats.engine import meta_path, read_metadata

            read_metadata(m)  # the stamp must travel with the engine: without it the model cannot load
            if not meta_path(m).is_file():
                raise SpotrtError(f"--triton-model {m}: found no {meta_path(m).name}, expected the engine's metadata")
        else:
            from ..formats.onnx_graph import SPOTTING_KINDS, load_graph

            load_graph(m, SPOTTING_KINDS)


def write_repository(repo, model, name: str = tensors.MODEL_NAME, max_batch: int = 8, queue_delay_us: int = 2000,
                     instances: int = 1, threads: int | None = None) -> Path:
    """Write `repo/name/` for `model` (an exported .onnx or a TensorRT .engine with its .json) -> its folder."""
    check_repo_settings(repo, model, max_batch, queue_delay_us, instances)
    src = Path(model)
    engine = src.suffix.lower() != ".onnx"
    folder = Path(repo) / name
    version = folder / "1"
    try:
        version.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MODEL_PY, version / "model.py")
        target = "model.engine" if engine else "model.onnx"
        shutil.copyfile(src, version / target)
        if engine:
            from ..formats.engine import meta_path

            shutil.copyfile(meta_path(src), meta_path(version / target))
        (folder / "config.pbtxt").write_text(config_pbtxt(name, target, max_batch, queue_delay_us, instances,
                                                          gpu=engine, threads=threads), encoding="utf-8")
    except OSError as exc:
        raise SpotrtError(f"--triton-repo {repo}: cannot be written ({exc.strerror or exc}), expected a writable "
                          "folder") from None
    return folder


__all__ = ["write_repository", "config_pbtxt", "check_repo_settings", "instances_spin"]
