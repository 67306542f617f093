from prime_rl.trainer.models.nemotron_h.configuration_nemotron_h import NemotronHConfig
from prime_rl.trainer.models.nemotron_h.modeling_nemotron_h import (
    NemotronHForCausalLM,
    NemotronHModel,
    NemotronHPreTrainedModel,
)

__all__ = [
    "NemotronHConfig",
    "NemotronHForCausalLM",
    "NemotronHModel",
    "NemotronHPreTrainedModel",
]
