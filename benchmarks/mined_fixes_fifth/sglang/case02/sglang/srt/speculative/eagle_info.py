from sglang.srt.speculative.spec_info import SpecInput


class EagleDraftInput(SpecInput):
    pass


class EagleVerifyInput(SpecInput):
    pass
