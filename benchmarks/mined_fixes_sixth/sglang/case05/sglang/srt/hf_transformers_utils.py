# (benchmark cut: re-export of transformers.AutoConfig)
from transformers import AutoConfig
