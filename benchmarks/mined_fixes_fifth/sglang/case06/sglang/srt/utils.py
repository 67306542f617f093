import importlib.util


def is_flashinfer_available():
    return importlib.util.find_spec("flashinfer") is not None
