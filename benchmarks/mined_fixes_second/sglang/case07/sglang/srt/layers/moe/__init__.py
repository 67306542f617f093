class MoeA2ABackend:
    def __init__(self, name: str = "none"):
        self.name = name

    def is_deepep(self):
        return self.name == "deepep"


_MOE_A2A_BACKEND = MoeA2ABackend()


def get_moe_a2a_backend() -> MoeA2ABackend:
    return _MOE_A2A_BACKEND
