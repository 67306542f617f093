import enum


class AttentionBackendEnum(enum.Enum):
    FLASH_ATTN = enum.auto()
    ROCM_AITER_FA = enum.auto()
    TRITON_ATTN = enum.auto()
    FLASHINFER = enum.auto()
    TORCH_SDPA = enum.auto()
