from dataclasses import dataclass


@dataclass(frozen=True)
class KVCacheSpec:
    block_size: int


@dataclass(frozen=True)
class AttentionSpec(KVCacheSpec):
    pass


@dataclass(frozen=True)
class MambaSpec(KVCacheSpec):
    num_speculative_blocks: int = 0
