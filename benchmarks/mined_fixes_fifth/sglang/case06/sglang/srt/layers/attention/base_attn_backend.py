from abc import ABC


class AttentionBackend(ABC):
    """The base class of attention backends"""

    def init_forward_metadata(self, forward_batch):
        raise NotImplementedError()

    def init_cuda_graph_state(self, max_bs: int, max_num_tokens: int):
        raise NotImplementedError()

    def init_forward_metadata_replay_cuda_graph(self, *args, **kwargs):
        raise NotImplementedError()

    def get_cuda_graph_seq_len_fill_value(self):
        raise NotImplementedError()
