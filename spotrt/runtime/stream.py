"""`spotrt run` as an API: sources by URI through a spotter into JSON Lines, video and window.

Order of checks, so that a mistake costs nothing: outputs writable, model loads, every source
opens; only then are frames read. The spotter comes in made, or as `load`, a function that makes
it once the options are checked (spotrt.api.run_stream passes one that picks the backend): the
runtime never chooses or imports a backend itself, so it never imports torch.
"""

from __future__ import annotations

import sys
from functools import partial

from ..errors import SpotrtError
from ..fileio import check_writable
from ..options import check_min_score, check_scale, set_min_score
from .pipeline import Pipeline, format_status, format_summary
from .sinks import DisplaySink, JsonlSink, VideoSink
from .sources import open_source, parse_source
from .sources import source_backend as choose_source_backend
from .tracking import Tracker


def _status_line(snapshot: dict) -> None:
    print(f"spotrt: {format_status(snapshot)}", file=sys.stderr, flush=True)


def run_stream(sources, spotter=None, load=None, output=None, jsonl=None, every: int = 1,
               max_frames: int | None = None, display: bool = False, min_track: int = 3, vote: int = 15,
               reconnect_timeout: float | None = None, quiet: bool = False, extra_sinks=(),
               print_summary: bool = True, scale: float = 1.0, min_score: float | None = None,
               source_backend: str = "auto", decoder: str = "auto") -> dict:
    """Read every source through `spotter` (or the one `load()` returns) -> the run's summary.

    `scale` resizes every frame before the network (see load_spotter); boxes stay in frame pixels.
    `source_backend` (auto, gst, opencv) and `decoder` (auto, nv, sw): how cameras, streams and
    files are opened (spotrt.runtime.sources.open_source).
    """
    from .gst import DECODERS

    if (spotter is None) == (load is None):
        raise TypeError("run_stream: expected a spotter or a function that loads one (load), not both or neither")
    scale = check_scale(scale)
    min_score = check_min_score(min_score)
    if not sources:
        raise SpotrtError("sources: found none, expected at least one video file, folder, camera or stream")
    if every < 1:
        raise SpotrtError(f"--every: found {every}, expected a whole number >= 1")
    if max_frames is not None and max_frames < 1:
        raise SpotrtError(f"--max-frames: found {max_frames}, expected a whole number >= 1")
    if min_track < 1 or vote < 1:
        raise SpotrtError(f"--min-track/--vote: found {min_track}/{vote}, expected whole numbers >= 1")
    if decoder not in DECODERS:
        raise SpotrtError(f"--decoder: found {decoder!r}, expected one of {', '.join(DECODERS)}")
    for uri in sources:  # a mistyped path or a backend that is not here fails before a model is loaded
        if not hasattr(uri, "frames"):
            choose_source_backend(parse_source(uri), source_backend)
    if jsonl:
        check_writable(jsonl, "output file")
    video = VideoSink(output, streams=len(sources)) if output else None
    if spotter is None:
        spotter = load()
        spotter.scale = scale
    elif scale != 1.0:
        spotter.scale = scale
    set_min_score(spotter, min_score)
    opened = []
    try:
        for i, uri in enumerate(sources):
            if hasattr(uri, "frames"):  # an already made VideoSource (the demo's stream)
                uri.stream = i
                opened.append(uri)
            else:
                opened.append(open_source(uri, stream=i, backend=source_backend, decoder=decoder,
                                          give_up_s=reconnect_timeout))
        sinks = list(extra_sinks)
        if jsonl:
            sinks.insert(0, JsonlSink(jsonl))
        if video is not None:
            video.fps = {s.stream: s.fps for s in opened}
            sinks.append(video)
        disp = DisplaySink(len(opened)) if display else None
        if disp is not None:
            sinks.append(disp)
    except BaseException:
        for s in opened:
            s.close()
        raise
    pipe = Pipeline(opened, spotter, sinks, every=every, max_frames=max_frames,
                    tracker=partial(Tracker, min_hits=min_track, window=vote),
                    status=None if quiet else _status_line)
    if disp is not None:
        disp.on_quit = pipe.stop
    summary = pipe.run()
    if video is not None:
        summary["video_frames"] = dict(video.frames)
    if print_summary:
        print(format_summary(summary))
        if jsonl:
            print(f"per-frame words: {jsonl}")
        if video is not None:
            print("annotated video: " + ", ".join(str(p) for p in video.paths.values()))
    return summary


__all__ = ["run_stream"]
