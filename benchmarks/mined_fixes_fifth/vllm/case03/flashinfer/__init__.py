# Stand-in for the flashinfer package (kernels are not part of this benchmark).


class _Wrapper:
    def __init__(self, *args, **kwargs):
        self.is_cuda_graph_enabled = kwargs.get("use_cuda_graph", False)

    def plan(self, *args, **kwargs):
        pass

    def run(self, *args, **kwargs):
        raise NotImplementedError


class BatchDecodeWithPagedKVCacheWrapper(_Wrapper):
    pass


class BatchPrefillWithPagedKVCacheWrapper(_Wrapper):
    pass


class MultiLevelCascadeAttentionWrapper(_Wrapper):
    pass
