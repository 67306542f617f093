from dataclasses import dataclass


@dataclass
class ServerArgs:
    device: str = "cuda"
    mamba_scheduler_strategy: str = "extra_buffer"
    mamba_cache_chunk_size: int = 64
    mamba_track_interval: int = 256
    enable_unified_memory: bool = False
    speculative_eagle_topk: int = 0

    def enable_mamba_extra_buffer(self) -> bool:
        return self.mamba_scheduler_strategy == "extra_buffer"
