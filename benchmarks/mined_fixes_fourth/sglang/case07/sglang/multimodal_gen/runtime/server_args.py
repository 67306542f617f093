from dataclasses import dataclass


@dataclass
class ServerArgs:
    model_path: str = ""
    num_gpus: int = 1
