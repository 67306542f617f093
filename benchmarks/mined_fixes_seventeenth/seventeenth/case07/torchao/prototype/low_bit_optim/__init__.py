from .adam import Adam8bit, Adam4bit, AdamFp8
from .adamw import _AdamW, AdamW8bit, AdamW4bit, AdamWFp8
from .cpu_offload import CPUOffloadOptimizer
