"""A frame of a source, the reasons a frame is dropped, and the base of every source.

Apart from spotrt.runtime.sources so that the GStreamer sources (spotrt.runtime.gst), which the
factory there opens, can build on them without importing it back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

# Frames the CSI pipeline asks the camera for; nvvidconv converts NVMM NV12 to BGR for appsink.
CSI_SIZE, CSI_FPS = (1280, 720), 30

DROP_NEWER = "live: newer frame"
DROP_CORRUPT = "corrupt: the frame could not be decoded"
DROP_TRUNCATED = "truncated: no readable frame from here to the file's stated frame count"
DROP_LOST = "live: lost while reconnecting"


@dataclass
class Frame:
    """One frame of one source. `image` is None when the frame could not be read (`dropped` says why)."""

    stream: int            # position of the source on the command line
    source: str            # its URI as given
    index: int             # frame number in the source, from 0, without gaps
    time: float            # seconds: position in the file, or wall-clock capture time for live sources
    image: np.ndarray | None = None
    dropped: str | None = None
    read_s: float = 0.0    # time spent decoding it (the capture stage's work)
    # time.perf_counter() when the source had it decoded: the start of its capture-to-result latency
    captured: float = field(default_factory=time.perf_counter)


class VideoSource:
    """Base of every source: `frames(stop)` yields Frames until the source ends or `stop` is set."""

    live = False
    fps: float | None = None

    def __init__(self, uri: str, stream: int = 0) -> None:
        self.uri, self.stream = str(uri), stream
        self.reconnects = 0

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
