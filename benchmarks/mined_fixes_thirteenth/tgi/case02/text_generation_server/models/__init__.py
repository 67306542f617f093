# (benchmark cut: the real models/__init__.py also imports every model class and defines
# get_model, which returns e.g. FlashLlama(model_id, revision, quantize=..., dtype=..., use_medusa=...))
from text_generation_server.models.model import Model
from text_generation_server.models.flash_causal_lm import FlashCausalLM
