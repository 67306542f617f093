# (benchmark cut: the real models/__init__.py also imports every model class and defines
# get_model / get_model_with_lora_adapters, which build FlashCausalLM, VlmCausalLM, MllamaCausalLM, ...)
from text_generation_server.models.model import Model
