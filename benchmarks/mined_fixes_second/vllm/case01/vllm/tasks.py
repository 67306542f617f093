from typing import Literal

PoolingTask = Literal["embed", "classify", "token_embed", "token_classify"]
