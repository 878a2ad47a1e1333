"""`spotrt bench`: latency per stage, end to end and pipelined throughput, memory and FLOPs; the
side-by-side comparisons; Jetson estimates. The API the CLI calls:

    opts = make_options(backend="onnxruntime", precision="fp32,int8", input_size="384x640", batch="1,2")
    result = run_bench(opts, log=print)          # a dict; every field documented in report.SCHEMA
    print(format_markdown(result))
    write_outputs(result, json_path="bench.json", plot_path="bench.png")

Modules: options (settings, checked first), timing (loops, statistics, memory), workloads (frames,
the staged workloads, the two-stage way, exported graphs, FLOPs and bytes), compare (the
comparisons), kernels (plugin kernels on torch CUDA tensors), jetson (published peaks, roofline),
report (SCHEMA, Markdown, JSON, PNG), run (the sweep). Speed is measured here and reported, never
asserted by a test.
"""

from .options import BenchOptions, make_options
from .report import SCHEMA, check_fields, check_output, format_markdown, render_plot, write_outputs
from .run import run_bench

__all__ = ["BenchOptions", "make_options", "run_bench", "format_markdown", "render_plot", "write_outputs",
           "check_output", "check_fields", "SCHEMA"]
