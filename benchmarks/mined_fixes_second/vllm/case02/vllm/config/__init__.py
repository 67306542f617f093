class CacheConfig:
    mamba_cache_mode: str = "none"


class SchedulerConfig:
    max_num_seqs: int = 256


class SpeculativeConfig:
    num_speculative_tokens: int | None = 1


class VllmConfig:
    def __init__(self):
        self.cache_config = CacheConfig()
        self.scheduler_config = SchedulerConfig()
        self.speculative_config: SpeculativeConfig | None = SpeculativeConfig()
