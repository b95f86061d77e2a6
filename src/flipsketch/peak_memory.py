"""Peak memory of a block, for the benchmark scripts: CUDA's max allocation, or the process's peak
resident set on the CPU (polled by a thread, since the OS keeps no resettable peak)."""

from __future__ import annotations

import os
import threading
import time


def rss_bytes() -> int:
    """This process's resident set size now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """`with PeakMemory(cuda) as m: ...` -> `m.peak` (bytes: CUDA max allocated since entry, or peak
    RSS), `m.base` (at entry: CUDA allocated, or RSS) and `m.growth` (peak - base)."""

    def __init__(self, cuda: bool = False, interval: float = 0.002):
        self.cuda, self.interval = cuda, interval
        self.base = self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def growth(self) -> int:
        return self.peak - self.base

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = self.peak = torch.cuda.memory_allocated()
        else:
            self.base = self.peak = rss_bytes()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())
