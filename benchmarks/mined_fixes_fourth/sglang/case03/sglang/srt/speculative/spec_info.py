from enum import IntEnum, auto


class SpecInputType(IntEnum):
    EAGLE_DRAFT = auto()
    EAGLE_VERIFY = auto()
    DFLASH_DRAFT = auto()


class SpecInput:
    def __init__(self, spec_input_type: SpecInputType):
        self.spec_input_type = spec_input_type
