"""Peak memory of a block, for the benchmark scripts: CUDA's max allocation, or the process's peak
resident set on the CPU (the kernel's high-water mark, `resource.getrusage`, restarted at entry)."""

from __future__ import annotations

import resource
import sys

import psutil


def rss_bytes() -> int:
    """This process's resident set size now."""
    return psutil.Process().memory_info().rss


def peak_rss_bytes() -> int:
    """The largest resident set this process has had (since `reset_peak_rss`, where it worked)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS counts bytes, Linux KiB


def reset_peak_rss() -> bool:
    """Restart the kernel's high-water mark from the resident set now (Linux 4.0+: "5" written to
    /proc/self/clear_refs); False where that is refused, and the peak stays the process's own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """`with PeakMemory(cuda) as m: ...` -> `m.peak` (bytes: CUDA max allocated since entry, or peak
    RSS), `m.base` (at entry: CUDA allocated, or RSS) and `m.growth` (peak - base). On the CPU the
    peak is the kernel's, every page counted (no sampling); where the high-water mark cannot be
    restarted (`m.since_entry` False) it is the process's peak so far, an upper bound."""

    def __init__(self, cuda: bool = False):
        self.cuda = cuda
        self.base = self.peak = 0
        self.since_entry = True

    @property
    def growth(self) -> int:
        return self.peak - self.base

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = self.peak = torch.cuda.memory_allocated()
        else:
            self.since_entry = reset_peak_rss()
            self.base = self.peak = rss_bytes()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self.peak = max(peak_rss_bytes(), rss_bytes(), self.base)
