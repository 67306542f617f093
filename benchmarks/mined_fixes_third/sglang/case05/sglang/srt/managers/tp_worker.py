from sglang.srt.model_executor.model_runner import ModelRunner


class TpModelWorker:
    def __init__(self, model_runner: ModelRunner):
        self.model_runner = model_runner
