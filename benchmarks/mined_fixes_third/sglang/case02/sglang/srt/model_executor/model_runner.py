from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class ModelRunner:
    def __init__(self, model, device: str):
        self.model = model
        self.device = device

    def forward_extend(self, forward_batch: ForwardBatch):
        return self.model.forward(
            forward_batch.input_ids, forward_batch.positions, forward_batch
        )
