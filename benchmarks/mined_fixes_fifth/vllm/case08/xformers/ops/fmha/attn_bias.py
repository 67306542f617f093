# Stand-in for xformers.ops.fmha.attn_bias.


class BlockDiagonalMask:

    @classmethod
    def from_seqlens(cls, q_seqlen, kv_seqlen=None, device=None):
        return cls()
