from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class ModelRunner:
    def __init__(self, model, server_args, gpu_id: int = 0):
        self.model = model
        self.server_args = server_args
        self.device = server_args.device
        self.gpu_id = gpu_id

    def forward_extend(self, forward_batch: ForwardBatch):
        return self.model.forward(
            forward_batch.input_ids, forward_batch.positions, forward_batch
        )
