"""The caps on one sdist's work, and the budget of decompressed bytes it spends from."""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.errors import RejectCode, Rejection


@dataclass(frozen=True)
class SdistLimits:
    """Caps that bound the work and memory one sdist can cost us, and its installers.

    The whole gzip stream is decompressed once, as tarfile walks it, and every byte it
    produces (tar headers and padding included) is counted against the same totals; the
    sizes the headers declare are checked first, so a bomb is refused before its bytes
    are inflated.
    """

    max_uncompressed_bytes: int = 2 * 1024**3  # the whole tar stream, as wheels' total
    # Decompressed / archive size, for totals over the floor: the wheels' caps. Text
    # deflates 3-6x; a tar of many small files, padded to 512-byte blocks, more.
    max_overall_ratio: int = 40
    ratio_floor_bytes: int = 16 * 1024**2  # smaller totals may have any ratio: cheap anyway
    max_members: int = 100_000
    max_pkg_info_bytes: int = 4 * 1024**2  # as METADATA: read whole with this byte limit
    # PAX and GNU long-name headers are read whole by tarfile: a path or link target
    # needs a few hundred bytes, a header of megabytes is only there to cost memory.
    max_extended_header_bytes: int = 64 * 1024
    max_path_length: int = 1024  # characters in a member name or link target
    max_warnings: int = 20  # lines kept in SdistInfo.warnings; the rest are counted


class SdistBudget:
    """Decompressed bytes: counted as produced, against the total and the ratio caps.

    The ratio rule (refused when over the floor and over ratio x archive size) is one
    number for a given upload, so both caps fold into ``cap``.
    """

    def __init__(self, limits: SdistLimits, archive_bytes: int) -> None:
        self.archive_bytes = archive_bytes
        self.limits = limits
        by_ratio = max(limits.ratio_floor_bytes, limits.max_overall_ratio * archive_bytes)
        self.cap = min(limits.max_uncompressed_bytes, by_ratio)
        self.produced = 0

    def spend(self, produced: int) -> None:
        self.produced += produced
        if self.produced > self.cap:
            raise Rejection(RejectCode.SDIST_BOMB, f"the archive {self._over()}")

    def check_declared(self, size: int, shown_name: str) -> None:
        """Refuse before inflating a member whose declared size would go over the cap."""
        if self.produced + size > self.cap:
            raise Rejection(
                RejectCode.SDIST_BOMB,
                f"member {shown_name} declares {size} bytes, so the archive {self._over()}",
            )

    def _over(self) -> str:
        limits = self.limits
        return (
            f"expands to more than {self.cap} bytes from {self.archive_bytes} (the caps: "
            f"{limits.max_uncompressed_bytes} bytes, and {limits.max_overall_ratio}x the archive "
            f"size above {limits.ratio_floor_bytes} bytes)"
        )
