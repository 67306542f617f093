# Put some global args for easy access
global_server_args_dict = {
    "enable_flashinfer_mla": False,
    "flashinfer_mla_disable_ragged": False,
    "disable_mla": False,
}
