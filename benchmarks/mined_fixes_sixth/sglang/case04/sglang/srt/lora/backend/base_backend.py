from sglang.srt.lora.utils import LoRABatchInfo

# (benchmark cut: the sgemm entry points; the triton backend kernels read batch_info)


class BaseLoRABackend:
    def __init__(self, name: str, batch_info: LoRABatchInfo = None):
        self.name = name
        self.batch_info = batch_info

    def set_batch_info(self, batch_info: LoRABatchInfo):
        self.batch_info = batch_info


def get_backend_from_name(name: str) -> BaseLoRABackend:
    # (benchmark cut: triton / flashinfer backend classes)
    return BaseLoRABackend
