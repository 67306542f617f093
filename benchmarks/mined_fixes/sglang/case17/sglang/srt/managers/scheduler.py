from sglang.srt.managers.schedule_batch import ScheduleBatch


class Scheduler:
    def update_running_batch(self, batch: ScheduleBatch):
        if batch.spec_info is not None:
            batch.spec_info.prepare_for_decode(batch)
        else:
            batch.prepare_for_decode()
        return batch
