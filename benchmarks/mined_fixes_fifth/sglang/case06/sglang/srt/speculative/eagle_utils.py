class EagleDraftInput:
    pass


class EagleVerifyInput:
    pass
