"""Type stubs of pydfn's Cython data path (pydfn/_data.pyx)."""

from typing import Optional, Union

import numpy as np
import numpy.typing as npt

def parse_idx(buf: Union[bytes, bytearray, memoryview, npt.NDArray[np.uint8]], name: str) -> npt.NDArray[np.uint8]:
    """Validate the raw (decompressed) IDX bytes ``buf`` and return their array."""
def scale_to_float(src: npt.NDArray[np.uint8], dst: npt.NDArray[np.float32]) -> None:
    """Write ``dst = src / 255`` as float32, in one pass with the GIL released."""
def shift_flip(src: Union[npt.NDArray[np.uint8], npt.NDArray[np.float32]],
               dst: Union[npt.NDArray[np.uint8], npt.NDArray[np.float32]],
               dy: npt.NDArray[np.int32], dx: npt.NDArray[np.int32], flip: npt.NDArray[np.uint8],
               rows: Optional[npt.NDArray[np.int64]] = None) -> None:
    """Shift (zero fill) and optionally mirror each image, with the GIL released."""
