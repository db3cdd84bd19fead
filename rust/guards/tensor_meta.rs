//! Tensor metadata guarded by [`Guard::Tensor`](super::Guard::Tensor): what a compiled
//! graph specialised on, read once at trace time and compared on every call.
//!
//! Dispatch keys: there is no cheap native accessor for a tensor's `DispatchKeySet`
//! (`TensorImpl::key_set()` is inline and the field offset is not stable API), so the
//! guard checks what the keys encode for eager CPU/CUDA tensors instead: the exact Python
//! type (which covers `__torch_dispatch__`/`__torch_function__` subclasses), device type
//! and index (backend keys), dtype, layout (sparse/mkldnn keys) and requires_grad
//! (autograd keys). Not covered: inference-mode tensors (`is_inference`), functorch
//! wrappers and conjugate/negative bits, which need either Python calls or private
//! TensorImpl offsets.

use std::borrow::Cow;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::tensor_native::native_reader;

/// `c10::DeviceType` values (stable: AOTI serialises them), by Python device-type name.
const DEVICE_TYPES: [&str; 21] = [
    "cpu",
    "cuda",
    "mkldnn",
    "opengl",
    "opencl",
    "ideep",
    "hip",
    "fpga",
    "maia",
    "xla",
    "vulkan",
    "metal",
    "xpu",
    "mps",
    "meta",
    "hpu",
    "ve",
    "lazy",
    "ipu",
    "mtia",
    "privateuseone",
];
const PRIVATE_USE_1: i32 = 20;

/// The `c10::DeviceType` code of a Python device-type name (`None` if unknown).
pub(crate) fn device_type_code(name: &str) -> Option<i32> {
    DEVICE_TYPES
        .iter()
        .position(|n| *n == name)
        .and_then(|p| i32::try_from(p).ok())
}

fn device_name(device_type: i32, index: i32) -> String {
    let name = usize::try_from(device_type)
        .ok()
        .and_then(|t| DEVICE_TYPES.get(t))
        .copied()
        .unwrap_or("privateuseone");
    if index >= 0 {
        format!("{name}:{index}")
    } else {
        name.to_string()
    }
}

/// One read of a tensor's metadata (native or Python); borrowed where the reader can.
#[derive(Debug, PartialEq)]
pub(crate) struct TensorView<'a> {
    /// The `torch.dtype` singleton.
    pub dtype: *mut ffi::PyObject,
    /// The `torch.layout` singleton.
    pub layout: *mut ffi::PyObject,
    pub device_type: i32,
    pub device_index: i32,
    pub sizes: Cow<'a, [i64]>,
    pub strides: Cow<'a, [i64]>,
    pub requires_grad: bool,
}

static TENSOR_TYPES: PyOnceLock<(Py<PyType>, Py<PyAny>)> = PyOnceLock::new();

/// `torch._C.TensorBase` and `torch.Tensor.__torch_dispatch__`.
fn tensor_types(py: Python<'_>) -> PyResult<&(Py<PyType>, Py<PyAny>)> {
    TENSOR_TYPES.get_or_try_init(py, || {
        let torch = py.import("torch")?;
        let base = torch
            .getattr("_C")?
            .getattr("TensorBase")?
            .cast_into::<PyType>()?;
        let dispatch = torch.getattr("Tensor")?.getattr("__torch_dispatch__")?;
        Ok((base.unbind(), dispatch.unbind()))
    })
}

/// Reads `v`'s metadata through Python attributes (the fallback and reference reader).
pub(crate) fn python_view<'a>(v: &Bound<'_, PyAny>) -> PyResult<TensorView<'a>> {
    let py = v.py();
    if !v.is_instance(tensor_types(py)?.0.bind(py))? {
        return Err(pyo3::exceptions::PyTypeError::new_err("not a torch.Tensor"));
    }
    let dtype = v.getattr("dtype")?;
    let layout = v.getattr("layout")?;
    let device = v.getattr("device")?;
    let dev_type: String = device.getattr("type")?.extract()?;
    let dev_index: Option<i32> = device.getattr("index")?.extract()?;
    let sizes: Vec<i64> = v.getattr("shape")?.extract()?;
    let strided = layout.str()?.to_cow()? == "torch.strided";
    let strides: Vec<i64> = if strided {
        v.call_method0("stride")?.extract()?
    } else {
        Vec::new()
    };
    Ok(TensorView {
        // The dtype/layout objects are interned singletons owned by the torch module, so
        // their addresses stay valid after these temporaries are dropped.
        dtype: dtype.as_ptr(),
        layout: layout.as_ptr(),
        device_type: device_type_code(&dev_type).unwrap_or(PRIVATE_USE_1),
        device_index: dev_index.unwrap_or(-1),
        sizes: Cow::Owned(sizes),
        strides: Cow::Owned(strides),
        requires_grad: v.getattr("requires_grad")?.extract()?,
    })
}

/// What a tensor guard specialises on.
#[derive(Debug)]
pub struct TensorMeta {
    /// Exact Python type (`torch.Tensor`, `torch.nn.Parameter`, a subclass).
    pub py_type: Py<PyType>,
    /// The `torch.dtype` object (a singleton, compared by identity).
    pub dtype: Py<PyAny>,
    /// `c10::DeviceType` code and device index (-1 when the device has none, e.g. CPU).
    pub device_type: i32,
    pub device_index: i32,
    /// The `torch.layout` object (a singleton).
    pub layout: Py<PyAny>,
    pub sizes: Vec<i64>,
    /// Empty for non-strided layouts.
    pub strides: Vec<i64>,
    pub requires_grad: bool,
    /// `str(dtype)`, e.g. `torch.float32` (for messages without the GIL).
    pub dtype_name: String,
    /// Whether the native reader may be used: the type does not override
    /// `__torch_dispatch__` (such subclasses may compute sizes in Python).
    native_ok: bool,
}

impl TensorMeta {
    /// Reads `v`'s metadata (trace time; through Python, the reference reader).
    pub fn read(v: &Bound<'_, PyAny>) -> PyResult<TensorMeta> {
        let py = v.py();
        let view = python_view(v)?;
        let ty = v.get_type();
        let default_dispatch = tensor_types(py)?.1.bind(py);
        let native_ok = ty
            .getattr("__torch_dispatch__")
            .is_ok_and(|d| d.is(default_dispatch));
        // The same singletons python_view compared, as owned references.
        let dtype = v.getattr("dtype")?;
        let layout = v.getattr("layout")?;
        Ok(TensorMeta {
            py_type: ty.unbind(),
            dtype_name: dtype.str()?.to_cow()?.into_owned(),
            dtype: dtype.unbind(),
            layout: layout.unbind(),
            device_type: view.device_type,
            device_index: view.device_index,
            sizes: view.sizes.into_owned(),
            strides: view.strides.into_owned(),
            requires_grad: view.requires_grad,
            native_ok,
        })
    }

    pub fn clone_ref(&self, py: Python<'_>) -> TensorMeta {
        TensorMeta {
            py_type: self.py_type.clone_ref(py),
            dtype: self.dtype.clone_ref(py),
            layout: self.layout.clone_ref(py),
            dtype_name: self.dtype_name.clone(),
            sizes: self.sizes.clone(),
            strides: self.strides.clone(),
            ..*self
        }
    }

    fn matches_view(&self, view: &TensorView<'_>) -> bool {
        view.dtype == self.dtype.as_ptr()
            && view.device_type == self.device_type
            && view.device_index == self.device_index
            && view.requires_grad == self.requires_grad
            && view.layout == self.layout.as_ptr()
            && *view.sizes == *self.sizes
            && *view.strides == *self.strides
    }

    /// Whether `v` still matches (hot path: native read when active).
    #[inline]
    pub fn matches(&self, v: &Bound<'_, PyAny>) -> bool {
        if v.get_type_ptr() != self.py_type.as_ptr().cast() {
            return false;
        }
        if self.native_ok {
            if let Some(view) = native_reader().and_then(|r| r.view(v)) {
                return self.matches_view(&view);
            }
        }
        python_view(v).is_ok_and(|view| self.matches_view(&view))
    }

    /// [`matches`](Self::matches) through Python attribute reads only (the fallback path;
    /// public for benchmarks and diagnostics).
    pub fn matches_python(&self, v: &Bound<'_, PyAny>) -> bool {
        v.get_type_ptr() == self.py_type.as_ptr().cast()
            && python_view(v).is_ok_and(|view| self.matches_view(&view))
    }

    /// The first difference between this metadata and `v`, for recompile messages:
    /// `x.shape: [8, 4] -> [9, 4]`, `x.dtype: torch.float32 -> torch.float64`.
    pub fn explain_mismatch(&self, v: &Bound<'_, PyAny>, source: &str) -> String {
        let py = v.py();
        let new_ty = v.get_type();
        if !new_ty.is(self.py_type.bind(py)) {
            return format!(
                "type({source}): {} -> {}",
                type_name(self.py_type.bind(py)),
                type_name(&new_ty)
            );
        }
        let view = match python_view(v) {
            Ok(view) => view,
            Err(e) => return format!("{source}: not readable as a tensor ({e})"),
        };
        let attr_str = |name: &str| {
            v.getattr(name)
                .and_then(|a| a.str())
                .map(|s| s.to_string())
                .unwrap_or_default()
        };
        if view.dtype != self.dtype.as_ptr() {
            return format!(
                "{source}.dtype: {} -> {}",
                self.dtype_name,
                attr_str("dtype")
            );
        }
        if (view.device_type, view.device_index) != (self.device_type, self.device_index) {
            return format!(
                "{source}.device: {} -> {}",
                device_name(self.device_type, self.device_index),
                device_name(view.device_type, view.device_index)
            );
        }
        if view.layout != self.layout.as_ptr() {
            return format!(
                "{source}.layout: {} -> {}",
                self.layout.bind(py),
                attr_str("layout")
            );
        }
        if view.requires_grad != self.requires_grad {
            return format!(
                "{source}.requires_grad: {} -> {}",
                py_bool(self.requires_grad),
                py_bool(view.requires_grad)
            );
        }
        if *view.sizes != *self.sizes {
            return format!("{source}.shape: {:?} -> {:?}", self.sizes, &*view.sizes);
        }
        if *view.strides != *self.strides {
            return format!(
                "{source}.stride(): {:?} -> {:?}",
                self.strides, &*view.strides
            );
        }
        format!("{source}: tensor metadata unchanged")
    }

    /// `tensor(float32, cpu, size=[4], stride=[1], requires_grad=False)`.
    pub fn describe(&self) -> String {
        let dtype = self
            .dtype_name
            .strip_prefix("torch.")
            .unwrap_or(&self.dtype_name);
        format!(
            "tensor({dtype}, {}, size={:?}, stride={:?}, requires_grad={})",
            device_name(self.device_type, self.device_index),
            self.sizes,
            self.strides,
            py_bool(self.requires_grad)
        )
    }
}

pub(crate) fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// `int`, `torch.Tensor`, `mymod.MyClass`.
pub(crate) fn type_name(ty: &Bound<'_, PyType>) -> String {
    let qual = ty
        .qualname()
        .map(|q| q.to_string())
        .unwrap_or_else(|_| "?".into());
    match ty.module().map(|m| m.to_string()) {
        Ok(m) if m != "builtins" => {
            let m = if m == "torch._tensor" {
                "torch"
            } else {
                m.as_str()
            };
            let m = if m == "torch.nn.parameter" {
                "torch.nn"
            } else {
                m
            };
            format!("{m}.{qual}")
        }
        _ => qual,
    }
}
