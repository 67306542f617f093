from sglang.srt.model_executor.model_runner import ModelRunner
from sglang.srt.server_args import ServerArgs


class TpModelWorker:
    """A tensor parallel model worker."""

    def __init__(self, server_args: ServerArgs, gpu_id: int):
        self.server_args = server_args
        self.gpu_id = gpu_id
        self.model_runner = ModelRunner(server_args=server_args, gpu_id=gpu_id)
        self.device = self.model_runner.device
