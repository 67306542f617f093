import abc


class BaseTokenToKVPoolAllocator(abc.ABC):
    @abc.abstractmethod
    def free(self, free_index):
        raise NotImplementedError()
