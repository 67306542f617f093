# (benchmark cut: BaseTokenToKVPoolAllocator, TokenToKVPoolAllocator,
#  PagedTokenToKVPoolAllocator re-exports)
