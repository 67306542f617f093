_forward_context = None


class ForwardContext:
    def __init__(self, attn_backend):
        self.attn_backend = attn_backend


def set_forward_context(ctx: ForwardContext):
    global _forward_context
    _forward_context = ctx


def get_forward_context() -> ForwardContext:
    return _forward_context


def get_attn_backend():
    return get_forward_context().attn_backend
