from dataclasses import dataclass


@dataclass
class ServerArgs:
    device: str = "cuda"
    mamba_scheduler_strategy: str = "extra_buffer"
    speculative_num_steps: int = 3

    def enable_mamba_extra_buffer(self) -> bool:
        return self.mamba_scheduler_strategy == "extra_buffer"


_global_server_args = None


def set_global_server_args_for_scheduler(server_args: ServerArgs):
    global _global_server_args
    _global_server_args = server_args


def get_global_server_args() -> ServerArgs:
    return _global_server_args
