from typing import Optional


class ModelConfig:
    max_model_len: int = 8192


class SpeculativeConfig:
    num_speculative_tokens: int = 3
    disable_padded_drafter_batch: bool = False
    draft_model_config: Optional[ModelConfig] = None

    def use_eagle(self) -> bool:
        return True


class VllmConfig:
    def __init__(self):
        self.model_config = ModelConfig()
        self.speculative_config: Optional[SpeculativeConfig] = SpeculativeConfig()
