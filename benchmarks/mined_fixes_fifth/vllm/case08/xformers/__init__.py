# Stand-in for the xformers package (kernels are not part of this benchmark).
