"""The caps on one upload's work, and the decompression budget every check spends from."""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.errors import RejectCode, Rejection


@dataclass(frozen=True)
class Limits:
    """Caps that bound the work and memory one upload can cost us, and its installers.

    Decompression is bounded in total, not per member: one very compressible member is
    normal (onnx ships a 2.5 KB test tensor that inflates 1016x) while a bomb can be split
    over many members. Every file is decompressed once (to check its RECORD hash), and the
    bytes are counted as they are produced against the same totals.
    """

    max_uncompressed_bytes: int = 2 * 1024**3  # all members together, declared and produced
    # Total uncompressed / archive size, for totals over the floor. Real wheels reach 15.5x
    # (pymssql 2.4.6, 48 MiB), 10.1x over 64 MiB, 2.1x for torch; the split bomb 855x.
    max_overall_ratio: int = 40
    ratio_floor_bytes: int = 16 * 1024**2  # smaller totals may have any ratio: cheap anyway
    max_members: int = 100_000
    max_metadata_bytes: int = 4 * 1024**2  # METADATA is read whole with this byte limit
    max_dist_info_file_bytes: int = 32 * 1024**2  # WHEEL and RECORD, also read whole
    max_warnings: int = 20  # lines kept in WheelInfo.warnings; the rest are counted


class Budget:
    """Decompressed bytes left to spend: counted as produced, not taken from headers."""

    def __init__(self, total: int) -> None:
        self.left = total

    def spend(self, produced: int) -> None:
        self.left -= produced
        if self.left < 0:
            raise Rejection(
                RejectCode.ZIP_BOMB,
                "the members decompress to more bytes than the archive declares",
            )
