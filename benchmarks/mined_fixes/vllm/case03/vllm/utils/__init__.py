from typing import Optional, Union

import numpy as np
import numpy.typing as npt
import torch


def is_pin_memory_available() -> bool:
    from vllm.platforms import current_platform
    return current_platform.is_pin_memory_available()


def make_ndarray_with_pad(x: list[list[int]], pad: int, dtype: npt.DTypeLike,
                          *, max_len: Optional[int] = None) -> npt.NDArray:
    if max_len is None:
        max_len = max(map(len, x), default=0)
    padded_x = np.full((len(x), max_len), pad, dtype=dtype)
    for ind, blocktb in enumerate(x):
        assert len(blocktb) <= max_len
        padded_x[ind, :len(blocktb)] = blocktb
    return padded_x


def make_tensor_with_pad(
    x: list[list[int]],
    pad: int,
    dtype: torch.dtype,
    *,
    max_len: Optional[int] = None,
    device: Optional[Union[str, torch.device]] = None,
    pin_memory: bool = False,
) -> torch.Tensor:
    np_dtype = np.int64
    padded_x = make_ndarray_with_pad(x, pad, np_dtype, max_len=max_len)
    tensor = torch.from_numpy(padded_x).to(device)
    if pin_memory:
        tensor = tensor.pin_memory()
    return tensor
