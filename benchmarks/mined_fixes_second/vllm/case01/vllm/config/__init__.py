class SchedulerConfig:
    enable_chunked_prefill: bool = True


class VllmConfig:
    def __init__(self):
        self.scheduler_config = SchedulerConfig()


_current_vllm_config = VllmConfig()


def get_current_vllm_config() -> VllmConfig:
    return _current_vllm_config
