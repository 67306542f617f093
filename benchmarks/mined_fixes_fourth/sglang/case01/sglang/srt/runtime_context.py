from sglang.srt.server_args import ServerArgs

_server_args = None


def set_server_args(server_args: ServerArgs):
    global _server_args
    _server_args = server_args


def get_server_args() -> ServerArgs:
    return _server_args
