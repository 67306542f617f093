from .continues_batch.impl import ContinuesBatchBackend
from .splitfuse.impl import SplitFuseBackend
# (benchmark cut: the other backends: prompt logprobs, reward model, beam search, diverse, token healing,
#  constraint modes, DP, PD prefill/decode nodes)
