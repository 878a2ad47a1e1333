"""Register the spotrt plugins with TensorRT (imports tensorrt; call before parsing or deserializing).

    from spotrt.plugins.trt_register import register_plugins
    register_plugins()   # compiles the kernels for GPU 0 (cached on disk), registers the creators

Kernels are compiled here, at build or load time, so that a plugin's enqueue only looks them up.
"""

from __future__ import annotations

from .spec import NAMESPACE

_creators: list = []  # TensorRT holds raw pointers to the creators: keep the Python objects alive


def plugin_versions() -> dict[str, str]:
    """{plugin name: version} of the spotrt plugins (no TensorRT needed)."""
    from .attn_decoder.spec import SPEC as DEC
    from .var_roi_pool.spec import SPEC as ROI

    return {ROI.name: ROI.version, DEC.name: DEC.version}


def register_plugins(arch: str | None = None) -> dict[str, str]:
    """Compile the kernels for `arch` (default: GPU 0) and register both creators in namespace 'spotrt' (once)."""
    import tensorrt as trt

    from .attn_decoder.spec import SPEC as DEC
    from .attn_decoder.trt import AttnDecoderCreator
    from .trt_support import compile_for_device
    from .var_roi_pool.spec import SPEC as ROI
    from .var_roi_pool.trt import VarRoIPoolCreator

    for spec in (ROI, DEC):
        compile_for_device(spec, arch)
    registry = trt.get_plugin_registry()
    for cls, spec in ((VarRoIPoolCreator, ROI), (AttnDecoderCreator, DEC)):
        if registry.get_creator(spec.name, spec.version, NAMESPACE) is None:
            creator = cls()
            if not registry.register_creator(creator, NAMESPACE):
                raise RuntimeError(f"TensorRT refused to register plugin {NAMESPACE}::{spec.name} v{spec.version}")
            _creators.append(creator)
    return plugin_versions()
