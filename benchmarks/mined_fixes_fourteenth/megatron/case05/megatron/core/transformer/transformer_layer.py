# Copyright (c) 2026 NVIDIA CORPORATION & AFFILIATES. All rights reserved.
from __future__ import annotations

import functools
import logging
import warnings
from abc import ABC
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Optional, Protocol, Union

import torch
import torch.distributed
from torch import Tensor

from megatron.core import parallel_state, tensor_parallel
from megatron.core.dist_checkpointing.mapping import ShardedStateDict
from megatron.core.dist_checkpointing.utils import apply_prefix_mapping
from megatron.core.inference.utils import InferenceMode
from megatron.core.packed_seq_params import PackedSeqParams
from megatron.core.process_groups_config import ProcessGroupCollection
from megatron.core.transformer.cuda_graphs import is_graph_capturing
from megatron.core.transformer.enums import CudaGraphModule, InferenceCudaGraphScope, LayerType
from megatron.core.transformer.identity_op import IdentityFuncOp, IdentityOp
from megatron.core.transformer.mlp import MLP
from megatron.core.transformer.module import GraphableMegatronModule
from megatron.core.transformer.spec_utils import ModuleSpec, build_module
from megatron.core.transformer.torch_norm import LayerNormBuilder
from megatron.core.transformer.transformer_config import TransformerConfig
from megatron.core.typed_torch import apply_module, copy_signature
from megatron.core.utils import (
    deprecate_inference_params,
    get_pg_rank,
    is_te_min_version,
    is_torch_min_version,
    log_single_rank,
    make_viewless_tensor,
    nvtx_range_pop,
    nvtx_range_push,
)

if TYPE_CHECKING:
    from megatron.core.inference.contexts import BaseInferenceContext

logger = logging.getLogger(__name__)

# (benchmark cut: _get_offloading_interface, get_transformer_layer_offset, MlpInterface/MlpBuilder protocols, TransformerLayerSubmodules)
class BaseTransformerLayer(ABC):
    """A common parent class for `TransformerLayer` like implementations.

    A dummy class that is subclassed by similar `TransformerLayer`s e.g. the
    `TransformerLayer` in this file and possibly other `TransformerLayer`
    implementations that aim to use `TransformerBlock` as the base module.
    The main purpose is to check if any layer (or module) provided in the spec
    is a subclass of this class to allow fanning-out of that spec for all the
    layers in the `TransformerBlock`. See `_get_block_submodules` method
    implementation in `transformer_block.py` file for more details.
    """

    def __init__(self):
        pass


class TransformerLayer(GraphableMegatronModule, BaseTransformerLayer):
    """A single transformer layer.

    Transformer layer takes input with size [s, b, h] and returns an
    output of the same size.
    """

    # (benchmark cut: __init__: builds attention, pre_mlp_layernorm and self.mlp (an MoELayer for MoE layers) from submodules; GraphableMegatronModule.__init__ (module.py) calls self.create_mcore_cudagraph_manager(config) when config.cuda_graph_impl == 'local')
    def create_mcore_cudagraph_manager(self, config):
        """Register the transformer layer for cudagraphs."""

        assert self.config.cuda_graph_impl == "local"

        from megatron.core.transformer.cuda_graphs import CudaGraphManager

        # If full scope (no specific sub-scope), cudagraph the entire layer.
        # Skip only when inference uses TransformerBlock-level graphs; otherwise the layer keeps
        # owning the empty-scope manager.
        if (
            not self.config.cuda_graph_modules
            and self.config.inference_cuda_graph_scope != InferenceCudaGraphScope.block
        ):
            self.cudagraph_manager = CudaGraphManager(config)
        elif (
            CudaGraphModule.attn in self.config.cuda_graph_modules
            and self.submodules_config.self_attention != IdentityOp
        ):
            self.cudagraph_manager = CudaGraphManager(config)
        elif (
            CudaGraphModule.mlp in self.config.cuda_graph_modules
            and self.submodules_config.mlp != IdentityOp
        ):
            # Cudagraphing MoE layers are supposed handled by MoeTransforerLayer
            assert not self.is_moe_layer
            self.cudagraph_manager = CudaGraphManager(config)

    @staticmethod
    # (benchmark cut: _get_layer_offset, _forward_attention)
    def forward(self, *args, **kwargs):
        """
        Perform a forward pass through the transformer layer.

        This method calls the core computation of a transformer layer, including
        self-attention, cross-attention (if applicable), and feed-forward operations.
        """
        hidden_states, context = self._forward_attention(*args, **kwargs)
        output = self._forward_mlp(
            hidden_states,
            kwargs.get("inference_context", None),
            padding_mask=kwargs.get("padding_mask", None),
            packed_seq_params=kwargs.get("packed_seq_params", None),
        )
        return output, context

    def _forward_pre_mlp_layernorm(self, hidden_states: Tensor):
        self.mlp_norm_manager = self.off_interface(self.offload_mlp_norm, hidden_states, "mlp_norm")
        if self.recompute_pre_mlp_layernorm:
            self.pre_mlp_norm_checkpoint = tensor_parallel.CheckpointWithoutOutput()
            with self.mlp_norm_manager as hidden_states:
                pre_mlp_layernorm_output = self.pre_mlp_norm_checkpoint.checkpoint(
                    apply_module(self.pre_mlp_layernorm), hidden_states
                )
        else:
            with self.mlp_norm_manager as hidden_states:
                pre_mlp_layernorm_output = apply_module(self.pre_mlp_layernorm)(hidden_states)

        return pre_mlp_layernorm_output

    def _maybe_unflatten_for_moe(self, hidden_states, padding_mask, packed_seq_params):
        """Un-flatten packed sequences to restore the batch dimension for MoE.

        When inter-document masking flattens MBS > 1 into [mbs*S, 1, H], the MoE
        router sees bsz=1 and computes seq_aux_loss over the entire flattened
        sequence instead of per sample. Un-flattening to [S, mbs, H] before the
        MoE layer restores the correct per-sample structure.

        Returns:
            (hidden_states, padding_mask, mbs) where mbs is None if no
            un-flattening was applied.
        """
        if (
            not self.is_moe_layer
            or packed_seq_params is None
            or getattr(packed_seq_params, 'tokens_per_sample', None) is None
        ):
            return hidden_states, padding_mask, None

        tokens_per_sample = packed_seq_params.tokens_per_sample
        mbs = hidden_states.shape[0] // tokens_per_sample
        if mbs <= 1:
            return hidden_states, padding_mask, None

        # The flattened tensor has all tokens from sample 0, then all tokens
        # from sample 1, etc. A plain reshape would keep that ordering, but we
        # need dim 0 to be the token position and dim 1 to be the sample index,
        # so view + transpose is required.
        hidden_states = hidden_states.view(mbs, tokens_per_sample, -1).transpose(0, 1).contiguous()
        if padding_mask is not None:
            padding_mask = padding_mask.view(mbs, tokens_per_sample)
        return hidden_states, padding_mask, mbs

    def _maybe_reflatten_from_moe(self, output, packed_seq_params, mbs):
        """Re-flatten MoE output back to [mbs*S, 1, H] for the residual add."""
        if mbs is None:
            return output
        return output.transpose(0, 1).reshape(mbs * packed_seq_params.tokens_per_sample, 1, -1)

    def _forward_mlp(
        self,
        hidden_states: Tensor,
        inference_context: BaseInferenceContext | None = None,
        padding_mask: Tensor | None = None,
        packed_seq_params=None,
    ) -> Tensor | list[Tensor | None]:
        """
        Perform a forward pass through the feed-forward layer.

        Args:
            hidden_states (Tensor): Transformed hidden states before the MLP layernorm.
                Shape [seq_length, batch_size, hidden_size].
            inference_context: Inference context for optimizations.
            padding_mask (Tensor, optional): Padding mask for MoE routing.
                Shape [bsz, seq_length]. True = padding (exclude), False = valid (include).
                Only used for MoE layers to exclude padding tokens from aux loss computations.
                The MoELayer will internally transform this to [seq_length, bsz] format.
            packed_seq_params: Packed sequence parameters, used to detect flattened
                batches that need reshaping for MoE sequence load balancing.
        Returns:
            output (Tensor): Transformed hidden states of shape [s, b, h].
        """

        # Optional Layer norm post the cross-attention.
        pre_mlp_layernorm_output = self._forward_pre_mlp_layernorm(hidden_states)

        if isinstance(pre_mlp_layernorm_output, tuple):
            if len(pre_mlp_layernorm_output) != 2:
                raise ValueError(
                    f"When the output of pre_mlp_layernorm is a tuple, it is "
                    f"expected to have 2 elements (output, residual), but "
                    f"got {len(pre_mlp_layernorm_output)}"
                )
            pre_mlp_layernorm_output, residual = pre_mlp_layernorm_output
        else:
            # Residual connection.
            residual = hidden_states

        if self.config.fp32_residual_connection:
            residual = residual.float()

        pre_mlp_layernorm_output, padding_mask, moe_unflatten_mbs = self._maybe_unflatten_for_moe(
            pre_mlp_layernorm_output, padding_mask, packed_seq_params
        )

        nvtx_range_push(suffix="mlp")
        # Potentially chunk the MLP computation during prefill to minimize the peak activation size
        should_chunk_mlp_for_prefill = (
            self.config.mlp_chunks_for_prefill > 1
            and inference_context is not None
            and not inference_context.is_decode_only()
            and not isinstance(self.mlp, IdentityOp)
            and not self.config.transformer_impl == "inference_optimized"
        )
        should_chunk_mlp_for_training = (
            self.config.mlp_chunks_for_training > 1
            and inference_context is None
            and self.training
            and not isinstance(self.mlp, IdentityOp)
        )

        using_fused_tp_inference_kernel = (
            InferenceMode.is_active() and self.config.inference_fuse_tp_communication
        )

        if self.recompute_mlp:
            if self.config.fp8 or self.config.fp4:
                # import here to avoid circular import
                from megatron.core.extensions.transformer_engine import te_checkpoint

                mlp_output_with_bias = te_checkpoint(
                    apply_module(self.mlp),
                    False,
                    tensor_parallel.random.get_cuda_rng_tracker,
                    self.pg_collection.tp,
                    pre_mlp_layernorm_output,
                    padding_mask=padding_mask,
                )
            else:
                mlp_output_with_bias = tensor_parallel.checkpoint(
                    functools.partial(apply_module(self.mlp), padding_mask=padding_mask),
                    False,
                    pre_mlp_layernorm_output,
                )
        elif should_chunk_mlp_for_prefill or should_chunk_mlp_for_training:
            # Chunk input along sequence dimension
            num_chunks = min(
                (
                    self.config.mlp_chunks_for_prefill
                    if should_chunk_mlp_for_prefill
                    else self.config.mlp_chunks_for_training
                ),
                pre_mlp_layernorm_output.shape[0],
            )

            chunks = pre_mlp_layernorm_output.chunk(num_chunks, dim=0)

            # Compute outputs for each chunk
            outputs = [apply_module(self.mlp)(chunk) for chunk in chunks]

            # Aggregate chunk outputs
            mlp_output = torch.cat([out for out, _ in outputs], dim=0)
            bias_chunks = [bias for _, bias in outputs if bias is not None]
            # elements in bias_chunks are the same for all chunks, so we can just use the first one
            bias_output = bias_chunks[0] if bias_chunks else None
            mlp_output_with_bias = (mlp_output, bias_output)
        else:
            if using_fused_tp_inference_kernel:
                # Set the residual for fused reduce-scatter + add + layer-norm + all-gather
                # operation in MLP's fc2.
                self._set_fc2_residual(residual)
            mlp_output_with_bias = apply_module(self.mlp)(
                pre_mlp_layernorm_output, padding_mask=padding_mask
            )

        if moe_unflatten_mbs is not None:
            mlp_output, mlp_bias = mlp_output_with_bias
            mlp_output = self._maybe_reflatten_from_moe(
                mlp_output, packed_seq_params, moe_unflatten_mbs
            )
            mlp_output_with_bias = (mlp_output, mlp_bias)

        nvtx_range_pop(suffix="mlp")

        if (
            self.is_moe_layer
            and self.config.cuda_graph_impl == "transformer_engine"
            and self.training
            and is_graph_capturing()
            and CudaGraphModule.moe_router in self.config.cuda_graph_modules
        ):
            if self.recompute_pre_mlp_layernorm:
                # Register the recompute hooks to all the cudagraph output tensors, because some
                # tensors are in parallel execution paths and they all need pre_mlp_layernorm to be
                # recomputed in backward pass. For example, the router path and the shared expert
                # path. So only register in one path is risky.
                for tensor in mlp_output_with_bias:
                    self.pre_mlp_norm_checkpoint.discard_output_and_register_recompute(tensor)
            return list(mlp_output_with_bias) + [residual]
        else:
            return self._forward_post_mlp(mlp_output_with_bias, residual)

    def _forward_post_mlp(
        self, mlp_output_with_bias: tuple[Tensor, Tensor | None], residual: Tensor
    ) -> Tensor:
        """
        Perform operations after the MLP computation.

        Args:
            mlp_output_with_bias (Tensor): Output tensor of the MLP layer with bias.
            residual (Tensor): Residual tensor.

        Returns:
            output (Tensor): Transformed hidden states of shape [s, b, h].
        """

        using_fused_tp_inference_kernel = (
            InferenceMode.is_active() and self.config.inference_fuse_tp_communication
        )

        if self.recompute_pre_mlp_layernorm:
            # discard the output of the pre-mlp layernorm and register the recompute
            # as a gradient hook of mlp_output_with_bias[0]
            self.pre_mlp_norm_checkpoint.discard_output_and_register_recompute(
                mlp_output_with_bias[0]
            )

        # TODO: could we move `bias_dropout_add_exec_handler` itself
        # inside the module provided in the `bias_dropout_add_spec` module?
        nvtx_range_push(suffix="mlp_bda")
        if using_fused_tp_inference_kernel:
            # In inference optimized transformer layer, there is no bias and dropout
            # The remaining residual add is already handled inside the
            # MLP module.
            hidden_states = mlp_output_with_bias[0]
        else:
            with self.bias_dropout_add_exec_handler():
                hidden_states = self.mlp_bda(self.training, self.config.bias_dropout_fusion)(
                    mlp_output_with_bias, residual, self.hidden_dropout
                )
        nvtx_range_pop(suffix="mlp_bda")
        # Delay the offload of the mlp norm until after the mlp_bda has been computed
        # because the residual is needed in the mlp_bda.
        if self.mlp_norm_manager is not None:
            hidden_states = self.mlp_norm_manager.group_offload(
                hidden_states, forced_released_tensors=[residual]
            )
            self.mlp_norm_manager = None

        # Jit compiled function creates 'view' tensor. This tensor
        # potentially gets saved in the MPU checkpoint function context,
        # which rejects view tensors. While making a viewless tensor here
        # won't result in memory savings (like the data loader, or
        # p2p_communication), it serves to document the origin of this
        # 'view' tensor.
        output = make_viewless_tensor(
            inp=hidden_states, requires_grad=hidden_states.requires_grad, keep_graph=True
        )

        return output

    # (benchmark cut: sharded_state_dict, fused-TP inference helpers, TE CUDA-graph capture/replay, offloading helpers)
class MoETransformerLayer(TransformerLayer):
    """
    A Transformer layer specialized for Mixture-of-Experts (MoE) architectures.

    Implements specific functionality to support CUDA graph capture for MoE layers.
    Due to the dynamic nature of MoE, capturing the entire layer in a single CUDA graph
    can be challenging. This class supports "partial" CUDA graphs by decomposing the
    MLP forward pass into router, expert-compute, and post-process stages.
    """

    def __init__(self, *args, **kwargs):
        self.is_moe_layer = True
        self.use_partial_cudagraphs = False
        self.moe_layer_recompute = False
        self._local_cudagraph_attr_names = None

        super().__init__(*args, **kwargs)

    def _should_call_local_cudagraph(self, *args, **kwargs):
        """
        Controls whether the full-layer cudagraph_manager captures the entire forward call
        as a single graph. Returns False to skip full-layer capture and route through _forward_mlp.

        MoE layers have two cudagraph modes:
        - Full-layer (use_partial_cudagraphs=False): the full-layer cudagraph_manager captures
          the forward pass as one graph. This is used during inference.
        - Partial (use_partial_cudagraphs=True): the full-layer manager is bypassed (returns
          False), and _forward_mlp routes through cudagraph_manager_router and
          cudagraph_manager_postprocess, which are monkey-patched onto _forward_mlp_router
          and _forward_mlp_postprocess by CudaGraphManager.__init__. The expert dispatch
          in between runs eagerly. This is used during training.
        """
        if self.use_partial_cudagraphs:
            return False
        if self.config.cuda_graph_impl != "local":
            return False
        return super()._should_call_local_cudagraph(*args, **kwargs)

    def transition_cudagraph_scope(self, mode):
        """Transition between full-layer and partial CUDA graph capture.

        Args:
            mode: 'full' for inference (full-layer capture) or 'partial' for training
            (router + postprocess captured, expert dispatch runs eagerly).
        """
        from megatron.core.transformer.cuda_graphs import CudaGraphManager

        if mode == 'partial':
            self.use_partial_cudagraphs = True
            self.moe_layer_recompute = (
                self.config.recompute_granularity == 'selective'
                and "moe" in self.config.recompute_modules
                and self.config.cuda_graph_impl == "local"
            )
            if not hasattr(self, '_router_dtoh_event'):
                self._router_dtoh_event = torch.cuda.Event()
            if not hasattr(self, 'cudagraph_manager_router'):
                self.cudagraph_manager_router = CudaGraphManager(
                    self.config, self, function_name="_forward_mlp_router"
                )
            if not hasattr(self, 'cudagraph_manager_postprocess'):
                self.cudagraph_manager_postprocess = CudaGraphManager(
                    self.config, self, function_name="_forward_mlp_postprocess"
                )
        elif mode == 'full':
            self.use_partial_cudagraphs = False
            self.mlp.fwd_execution_map = ["route", "expert_compute", "postprocess"]
            assert hasattr(self, 'cudagraph_manager'), (
                "MoETransformerLayer missing full cudagraph_manager; "
                "expected it to be created at __init__ with scope = [] "
            )
        else:
            raise ValueError(f"Unknown MoE cudagraph mode: {mode}, expected 'full' or 'partial'")

    def create_mcore_cudagraph_manager(self, config):
        """
        Initializes the CUDA graph manager(s) for the MoE layer.

        Unlike the standard layer which typically uses a single manager, this method
        can configure multiple graph managers if partial CUDA graphs are enabled via
        `cuda_graph_modules`. This allows capturing the static parts of the MoE pass
        while leaving the expert computation to execute eagerly.
        """

        assert self.config.cuda_graph_impl == "local"

        from megatron.core.transformer.cuda_graphs import CudaGraphManager

        if (
            not self.config.cuda_graph_modules
            and self.config.inference_cuda_graph_scope != InferenceCudaGraphScope.block
        ) or CudaGraphModule.moe in self.config.cuda_graph_modules:
            self.cudagraph_manager = CudaGraphManager(config)
        elif (
            CudaGraphModule.moe_router in self.config.cuda_graph_modules
            or CudaGraphModule.moe_preprocess in self.config.cuda_graph_modules
        ):
            self.transition_cudagraph_scope('partial')

    def _resolve_token_dispatcher_attr(self, attr_name: str) -> tuple[Any, str]:
        parent_attr_name, _, leaf_attr_name = attr_name.rpartition('.')
        obj = self.mlp.token_dispatcher
        for parent_name in parent_attr_name.split('.') if parent_attr_name else ():
            obj = getattr(obj, parent_name)
        return obj, leaf_attr_name or attr_name

    def _restore_token_dispatcher_attrs(self, attr_outputs):
        assert len(attr_outputs) == len(self._local_cudagraph_attr_names)
        for attr_name, attr in zip(self._local_cudagraph_attr_names, attr_outputs):
            obj, name = self._resolve_token_dispatcher_attr(attr_name)
            setattr(obj, name, attr)

    def _get_token_dispatcher_attrs(self):
        attr_names = []
        token_dispatcher_attr_outputs = []
        for attr_name in self.mlp.token_dispatcher.cudagraph_attrs:
            obj, name = self._resolve_token_dispatcher_attr(attr_name)
            attr = getattr(obj, name)
            if torch.is_tensor(attr):
                attr_names.append(attr_name)
                token_dispatcher_attr_outputs.append(attr)

        return tuple(attr_names), token_dispatcher_attr_outputs

    def _forward_mlp_router(self, hidden_states, padding_mask=None):
        """
        Executes the router phase of the MoE block.

        This includes the pre-MLP layernorm and the routing logic.
        This method is isolated so it can be captured by `cudagraph_manager_router`.
        """

        self.mlp.fwd_execution_map = "route"
        pre_mlp_layernorm_output = self._forward_pre_mlp_layernorm(hidden_states)
        if isinstance(pre_mlp_layernorm_output, tuple):
            if len(pre_mlp_layernorm_output) != 2:
                raise ValueError(
                    f"When the output of pre_mlp_layernorm is a tuple, it is "
                    f"expected to have 2 elements (output, residual), but "
                    f"got {len(pre_mlp_layernorm_output)}"
                )
            pre_mlp_layernorm_output, residual = pre_mlp_layernorm_output
        else:
            residual = hidden_states

        if self.config.fp32_residual_connection:
            residual = residual.float()

        hidden_states, probs, shared_expert_output = apply_module(self.mlp)(
            pre_mlp_layernorm_output, intermediate_tensors=(), padding_mask=padding_mask
        )

        if self.use_partial_cudagraphs:
            attr_names, token_dispatcher_attr_outputs = self._get_token_dispatcher_attrs()
            if self._local_cudagraph_attr_names is None:
                self._local_cudagraph_attr_names = attr_names
            else:
                assert attr_names == self._local_cudagraph_attr_names
        else:
            # For eager mode, no need to pass the token_dispatcher attributes
            token_dispatcher_attr_outputs = []

        return (
            residual,
            hidden_states,
            probs,
            shared_expert_output,
            *token_dispatcher_attr_outputs,
        )

    def _forward_mlp_expert_compute(self, hidden_states, probs, token_dispatcher_attr_outputs):
        """
        Executes the actual computation of the experts.

        This phase takes the routing information and inputs, dispatches them to the
        appropriate experts, and computes the results. In partial graph modes, this
        step runs eagerly between the router and postprocess graph replays.
        """

        if self.use_partial_cudagraphs:
            # Restore the token dispatcher attrs returned on the router graph's output surface.
            self._restore_token_dispatcher_attrs(token_dispatcher_attr_outputs)

        self.mlp.fwd_execution_map = "expert_compute"
        return apply_module(self.mlp)(None, intermediate_tensors=(hidden_states, probs))

    def _forward_mlp_postprocess(self, residual, output, shared_expert_output, mlp_bias):
        """
        Executes the post-processing phase of the MoE block.

        Handles combining the expert outputs, applying biases, re-registering
        activation recomputation hooks if necessary, and performing the final
        Bias-Dropout-Add. This method is isolated so it can be captured by cudagraphs.

        """

        self.mlp.fwd_execution_map = "postprocess"
        output = apply_module(self.mlp)(None, intermediate_tensors=(output, shared_expert_output))
        return self._forward_post_mlp((output, mlp_bias), residual)

    def _forward_mlp(
        self, hidden_states, inference_context=None, padding_mask=None, packed_seq_params=None
    ):
        """
        Orchestrates the MLP forward pass, handling partial CUDA graph execution logic.

        If `use_partial_cudagraphs` is True, this method stitches together the
        router, expert_compute, and postprocess calls.
        """

        if inference_context is not None:
            assert not self.use_partial_cudagraphs, (
                "Partial cudagraphs for MoEs were detected during inference!"
                "Please do not use --cuda-graph-modules moe_router moe_preprocess "
                "alongside inference."
            )

        def _forward_mlp_partial_cudagraphs(
            hidden_states, inference_context=None, padding_mask=None
        ):
            router_outputs = self._forward_mlp_router(hidden_states, padding_mask=padding_mask)
            (
                residual,
                hidden_states,
                probs,
                shared_expert_output,
                *token_dispatcher_attr_outputs,
            ) = router_outputs

            # After the router graph replays, the captured .copy_() operations that update
            # the returned dispatcher tensors via `_maybe_dtoh_and_synchronize` are queued on
            # the current stream but may not have completed. Record an event after the router
            # graph and wait on it, so we block only until the router's D2H copies complete.
            self._router_dtoh_event.record()
            self._router_dtoh_event.synchronize()  # SYNC (pre-fix, #6432)

            expert_output, mlp_bias = self._forward_mlp_expert_compute(
                hidden_states, probs, token_dispatcher_attr_outputs
            )
            return self._forward_mlp_postprocess(
                residual, expert_output, shared_expert_output, mlp_bias
            )

        if self.use_partial_cudagraphs:
            hidden_states, padding_mask, moe_unflatten_mbs = self._maybe_unflatten_for_moe(
                hidden_states, padding_mask, packed_seq_params
            )

            if self.moe_layer_recompute:
                if self.config.fp8 or self.config.fp4:
                    from megatron.core.extensions.transformer_engine import te_checkpoint

                    result = te_checkpoint(
                        _forward_mlp_partial_cudagraphs,
                        False,
                        tensor_parallel.random.get_cuda_rng_tracker,
                        parallel_state.get_tensor_model_parallel_group(),
                        hidden_states,
                        padding_mask=padding_mask,
                    )
                else:
                    result = tensor_parallel.checkpoint(
                        functools.partial(
                            _forward_mlp_partial_cudagraphs, padding_mask=padding_mask
                        ),
                        False,
                        hidden_states,
                    )
            else:
                result = _forward_mlp_partial_cudagraphs(hidden_states, padding_mask=padding_mask)

            result = self._maybe_reflatten_from_moe(result, packed_seq_params, moe_unflatten_mbs)

            return result
        else:
            return super()._forward_mlp(
                hidden_states, padding_mask=padding_mask, packed_seq_params=packed_seq_params
            )
