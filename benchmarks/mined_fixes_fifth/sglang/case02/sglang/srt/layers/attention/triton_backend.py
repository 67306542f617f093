from sglang.srt.layers.attention.base_attn_backend import AttentionBackend


class TritonAttnBackend(AttentionBackend):
    def __init__(self, model_runner):
        super().__init__()
        self.device = model_runner.device

    def init_cuda_graph_state(self, max_bs: int, max_num_tokens: int):
        pass

    def init_forward_metadata_replay_cuda_graph(self, *args, **kwargs):
        pass

    def get_cuda_graph_seq_len_fill_value(self):
        return 1
