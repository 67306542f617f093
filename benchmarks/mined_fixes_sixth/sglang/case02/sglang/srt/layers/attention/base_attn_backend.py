# (benchmark cut: abstract base class; only the interface names used here)
class AttentionBackend:
    def init_forward_metadata(self, forward_batch):
        raise NotImplementedError()
