"""Compiling a PyMC model for nutpie with every compiled piece cached on disk.

``nutpie.compile_pymc_model`` builds the log-density and its gradient with PyTensor's Numba
backend — those kernels are cached on disk by PyTensor (``<base_compiledir>/numba``) — and
then wraps them in two C callbacks (``numba.cfunc``) for nutpie's Rust sampler. The wrappers
close over per-process data (a record type whose field names are random UUIDs), so Numba
cannot cache them and every process compiles them again: ~7 s of a 2-parameter fit on two
cores, most of it Numba compiling the array copy ``out[...] = grad``.

:func:`compile_pymc_model` builds the same :class:`nutpie.compile_pymc.CompiledPyMCModel`
with wrappers generated as source text whose layout depends only on the shapes of the
data, registered under a key derived from PyTensor's key for the kernels they call (and
Numba's CPU name and features), so Numba caches them beside PyTensor's kernels and a later
process loads them in a fraction of a second. The wrappers call the same kernels on the same
arrays, so the draws are bit-for-bit those of ``nutpie.compile_pymc_model`` with a warm cache
for the same seed; this process always loads the wrappers from the cache, so a cold start
samples as a warm one (:func:`_compile_pair`). If nutpie's internals differ from what this
module expects, it falls back to ``nutpie.compile_pymc_model``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from typing import Any

import numpy as np

#: Change to invalidate every cached wrapper.
WRAPPER_VERSION = "1"

log = logging.getLogger(__name__)


def _wrapper_source(kind: str, n_dim: int, n_expanded: int, layout: list[tuple[int, int, str]], total: int) -> str:
    """Source of a C callback with nutpie's calling convention.

    ``user_data`` is a flat ``uint64`` array: for each shared variable its address and then
    its shape. ``layout`` gives, for each argument of the kernel after ``x``, its offset,
    rank and dtype in that array.
    """
    if kind == "logp":
        head = ["def wrapper(dim, x_, out_, logp_, user_data_):", f"    if dim != {n_dim}:", "        return -1"]
        fail = 1
    else:
        head = [
            "def wrapper(dim, expanded, x_, out_, user_data_):",
            f"    if dim != {n_dim} or expanded != {n_expanded}:",
            "        return -1",
        ]
        fail = -2
    body = [f"ud = numba.carray(user_data_, ({total},), np.uint64)", f"x = numba.carray(x_, ({n_dim},))"]
    args = []
    for i, (offset, ndim, dtype) in enumerate(layout):
        shape = "(" + "".join(f"int(ud[{offset + 1 + d}]), " for d in range(ndim)) + ")"
        body.append(f"d{i} = numba.carray(void_pointer(ud[{offset}]), {shape}, np.{dtype})")
        args.append(f"d{i}")
    call = ", ".join(["x", *args])
    if kind == "logp":
        body += [
            f"out = numba.carray(out_, ({n_dim},))",
            "logp = numba.carray(logp_, ())",
            f"logp_val, grad = KERNEL({call})",
            "logp[()] = logp_val",
            f"for i in range({n_dim}):",  # an explicit loop: `out[...] = grad` takes Numba seconds to compile
            "    out[i] = grad[i]",
            f"for i in range({n_dim}):",
            "    if not np.isfinite(out[i]):",
            "        return 3",
            "if not np.isfinite(logp_val):",
            "    return 4",
        ]
    else:
        body += [
            f"out = numba.carray(out_, ({n_expanded},))",
            f"(values,) = KERNEL({call})",
            f"for i in range({n_expanded}):",
            "    out[i] = values[i]",
        ]
    lines = [*head, "    try:", *("        " + b for b in body), "    except Exception:", f"        return {fail}"]
    return "\n".join([*lines, "    return 0"]) + "\n"


def _wrapper(kind: str, kernel: Any, n_dim: int, n_expanded: int, layout: list, total: int) -> tuple:
    """The Python function of one C callback around a PyTensor kernel, its signature and cache key."""
    import numba
    from numba.core.registry import cpu_target
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

    src = _wrapper_source(kind, n_dim, n_expanded, layout, total)
    kernel_key = CACHED_SRC_FUNCTIONS.get(kernel.py_func)
    key = None
    if kernel_key is not None:  # PyTensor caches the kernel, so the wrapper can be cached too
        codegen = cpu_target.target_context.codegen().magic_tuple()  # target, CPU name and features
        blob = f"{WRAPPER_VERSION}|{kernel_key}|{numba.__version__}|{codegen}|{src}"
        key = "nutpie_" + kind + "_" + hashlib.sha256(blob.encode()).hexdigest()
    env = {
        "__name__": __name__,  # Numba rebuilds a cached function's globals from this module
        "numba": numba,
        "np": np,
        "KERNEL": kernel,
        "void_pointer": address_as_void_pointer,
    }
    fn = compile_numba_function_src(src, "wrapper", env, cache_key=key)
    ptr, u64 = numba.types.CPointer(numba.types.double), numba.types.uint64
    if kind == "logp":
        sig = numba.types.int64(u64, ptr, ptr, ptr, numba.types.voidptr)
    else:
        sig = numba.types.int64(u64, u64, ptr, ptr, numba.types.voidptr)
    return fn, sig, key


def _cfunc(wrapper: tuple) -> Any:
    """Compile a wrapper from :func:`_wrapper`, or load it from the on-disk cache."""
    import numba

    fn, sig, key = wrapper
    return numba.cfunc(sig, cache=key is not None)(fn)


def _cached(key: str | None) -> bool:
    """Whether Numba's cache already holds the wrapper with this key."""
    from pytensor.link.numba.cache import NUMBA_CACHE_PATH

    return key is not None and any(NUMBA_CACHE_PATH.glob(f"*{key}*.nbi"))


def _precompile_scalar_kernels(fgraph: Any) -> None:
    """Compile the scalar kernels of a log-density graph into PyTensor's cache, last node first.

    PyTensor compiles each ``Composite`` (a fused scalar expression: the log-gammas, the
    prior's erf and their derivatives) as its own cached Numba function. Compiling them here
    in reverse order while another process compiles the graph in order means that process
    finds the later ones already in the cache (Numba reads it when it first needs each function).
    """
    from pytensor.link.numba.dispatch.basic import get_numba_type, numba_funcify_ensure_cache
    from pytensor.scalar.basic import Composite

    for node in reversed(fgraph.toposort()):
        if not isinstance(node.op, Composite):
            continue
        fn, key = numba_funcify_ensure_cache(node.op, node=node)
        if key is None or not hasattr(fn, "fold_argument_types"):
            continue
        types = tuple(get_numba_type(i.type) for i in node.inputs)
        fn.compile(tuple(fn.fold_argument_types(types, {})[1]))


def _compile_pair(logp: tuple, expand: tuple, fgraph: Any = None) -> tuple[Any, Any]:
    """Compile both callbacks in forked children, then load them from the cache.

    A callback compiled in this process calls the kernels Numba compiled here; one loaded from
    the cache calls the copies linked into its own object code, and with fastmath the two can
    differ in the last bits (the gradient of the catalogue's ``pooled`` variant does), so a cold
    start sampled differently from a warm one. On a cold start this process therefore compiles
    nothing itself: one child compiles the log-density's callback while another compiles the
    log-density's scalar kernels from the last one back (:func:`_precompile_scalar_kernels`,
    which the first child then finds in the cache) and the expand callback. Compiling is
    single-threaded (Numba holds a lock), so the two children share the work. Without ``fork``,
    or if a child fails, this process compiles what is missing itself.
    """
    missing = [w for w in (logp, expand) if w[2] is not None and not _cached(w[2])]
    pids = []
    if missing and sys.platform == "linux" and hasattr(os, "fork"):
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            for wrapper in missing:
                pid = os.fork()
                if pid == 0:  # a child: compile into the cache and leave without the parent's exit handlers
                    code = 1
                    try:
                        if wrapper is expand and len(missing) == 2 and fgraph is not None:
                            try:
                                _precompile_scalar_kernels(fgraph)
                            except Exception:  # only a lost head start: the other child compiles them anyway
                                pass
                        _cfunc(wrapper)
                        code = 0
                    finally:
                        os._exit(code)
                pids.append(pid)
        finally:
            for pid in pids:
                os.waitpid(pid, 0)
    return _cfunc(logp), _cfunc(expand)


def _layout(arrays: list[np.ndarray]) -> tuple[list[int], int]:
    offsets, pos = [], 0
    for a in arrays:
        offsets.append(pos)
        pos += 1 + a.ndim
    return offsets, max(pos, 1)


def _user_data(arrays: list[np.ndarray]) -> np.ndarray:
    offsets, total = _layout(arrays)
    data = np.zeros(total, np.uint64)
    for a, offset in zip(arrays, offsets, strict=True):
        data[offset] = a.ctypes.data
        data[offset + 1 : offset + 1 + a.ndim] = a.shape
    return data


_CLASS: list[type] = []


def _model_class() -> type:
    """nutpie's ``CompiledPyMCModel`` with ``with_data`` for the flat ``user_data`` layout used here."""
    if not _CLASS:
        import dataclasses

        from nutpie.compile_pymc import CompiledPyMCModel

        @dataclasses.dataclass(frozen=True)
        class CachedPyMCModel(CompiledPyMCModel):
            def with_data(self, **updates: Any) -> CachedPyMCModel:
                shared = dict(self.shared_data)
                for name, value in updates.items():
                    found = [k for var, k in self.shared_var_keys.items() if var.name == name]
                    if len(found) != 1:
                        raise KeyError(f"unknown or ambiguous shared variable: {name}")
                    old = shared[found[0]]
                    new = np.array(value, dtype=old.dtype, order="C", copy=True)
                    if new.ndim != old.ndim:
                        raise ValueError(f"shared variable {name} must have rank {old.ndim}")
                    new.flags.writeable = False
                    shared[found[0]] = new
                return dataclasses.replace(self, shared_data=shared, user_data=_user_data(list(shared.values())))

        _CLASS.append(CachedPyMCModel)
    return _CLASS[0]


def _compile_cached(model: Any) -> Any:
    from nutpie import compile_pymc as cp
    from pymc.initial_point import make_initial_point_fn

    # as nutpie.compile_pymc_model(model) with its defaults
    initial_point = make_initial_point_fn(
        model=model,
        overrides=None,
        default_strategy="support_point",
        jitter_rvs=set(model.free_RVs),
        return_transformed=True,
    )
    n_dim, n_expanded, logp_fn, expand_fn, initial_point_fn, shape_info, reparameterized = cp._make_functions(
        model,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=cp._wrap_with_lock(initial_point),
        var_names=None,
    )
    shared_data: dict[str, np.ndarray] = {}
    keys: dict[Any, str] = {}
    for var in [*logp_fn.get_shared(), *expand_fn.get_shared()]:
        if var in keys:
            continue
        value = np.array(var.get_value(), order="C", copy=True)
        value.flags.writeable = False
        keys[var] = f"shared{len(keys)}"
        shared_data[keys[var]] = value
    arrays = list(shared_data.values())
    offsets, total = _layout(arrays)
    where = {k: (o, a.ndim, a.dtype.name) for k, o, a in zip(shared_data, offsets, arrays, strict=True)}
    logp_layout = [where[keys[v]] for v in logp_fn.get_shared()]
    expand_layout = [where[keys[v]] for v in expand_fn.get_shared()]
    logp_c, expand_c = _compile_pair(
        _wrapper("logp", logp_fn.vm.jit_fn, n_dim, n_expanded, logp_layout, total),
        _wrapper("expand", expand_fn.vm.jit_fn, n_dim, n_expanded, expand_layout, total),
        logp_fn.maker.fgraph,
    )
    dims, coords = cp._prepare_dims_and_coords(model, shape_info, reparameterized)
    return _model_class()(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp_c,
        compiled_expand_func=expand_c,
        initial_point_func=initial_point_fn,
        shared_data=shared_data,
        shared_var_keys=keys,
        user_data=_user_data(arrays),  # the arrays above stay alive in shared_data
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_fn,
        expand_func=expand_fn,
        reparameterized_names=reparameterized,
    )


def compile_pymc_model(model: Any) -> Any:
    """``nutpie.compile_pymc_model(model)`` whose compiled code is reused across processes.

    The result samples exactly as nutpie's own (same kernels, initial points and seeds), and
    ``with_data`` swaps data of the same rank as nutpie's does.
    """
    try:
        return _compile_cached(model)
    except (AttributeError, ImportError, TypeError, KeyError) as err:  # nutpie's internals moved
        import nutpie

        log.debug("cached compilation unavailable (%s); using nutpie.compile_pymc_model", err)
        return nutpie.compile_pymc_model(model)
