//! Tensor metadata guarded by [`Guard::Tensor`](super::Guard::Tensor): what a compiled
//! graph specialised on, read once at trace time and compared on every call.
//!
//! The guard compares the exact Python type, dtype, device type and index, layout, sizes,
//! strides and requires_grad, and for plain strided tensors the whole dispatch key set
//! (which also covers conjugate/negative bits, inference tensors and autocast/backend
//! keys). The hot path reads plain tensors' fields straight from the `TensorImpl` at
//! offsets located and validated at start-up (`tensor_impl.rs`), other tensors through
//! the AOTI shim (`tensor_native.rs`), and everything through Python attributes when the
//! native reader is off.

use crate::ImportCached;
use std::borrow::Cow;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use super::tensor_native::native_reader;

/// Dispatch keys whose tensors keep sizes elsewhere or run Python (their key sets are not
/// recorded, so they never take the TensorImpl fast path).
const NOT_PLAIN_KEYS: [&str; 14] = [
    "Python",
    "PythonTLSSnapshot",
    "PythonDispatcher",
    "Functionalize",
    "FuncTorchBatched",
    "FuncTorchVmapMode",
    "FuncTorchGradWrapper",
    "FuncTorchDynamicLayerFrontMode",
    "FuncTorchDynamicLayerBackMode",
    "BatchedNestedTensor",
    "Sparse",
    "SparseCsr",
    "NestedTensor",
    "Quantized",
];

static KEY_FNS: PyOnceLock<(Py<PyAny>, Vec<Py<PyAny>>)> = PyOnceLock::new();

/// An expected size or stride that is symbolic (a dynamic dimension): any value passes
/// here, and the entry's shape guard checks it.
pub(crate) const ANY_SIZE: i64 = i64::MIN;

/// `a` (read now) against `expected` as a plain loop: shapes are a few elements, where a
/// `memcmp` call costs more than the comparison.
#[inline]
fn same_ints(a: &[i64], expected: &[i64]) -> bool {
    a.len() == expected.len()
        && a.iter()
            .zip(expected)
            .all(|(x, y)| x == y || *y == ANY_SIZE)
}

/// `DispatchKeySet(CPU, ADInplaceOrView, ...)` for a raw key set (for messages).
fn key_names(py: Python<'_>, raw: u64) -> String {
    py.import_cached("torch")
        .and_then(|t| t.getattr("_C"))
        .and_then(|c| c.getattr("DispatchKeySet"))
        .and_then(|k| k.call_method1("from_raw_repr", (raw,)))
        .and_then(|k| k.str().map(|s| s.to_string()))
        .unwrap_or_else(|_| format!("{raw:#x}"))
}

/// The raw dispatch key set of `v` if it is a plain strided tensor (none of
/// [`NOT_PLAIN_KEYS`]), through `torch._C._dispatch_keys`.
fn plain_keys(v: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    let py = v.py();
    let (dispatch_keys, excluded) = KEY_FNS.get_or_try_init(py, || -> PyResult<_> {
        let c = py.import_cached("torch")?.getattr("_C")?;
        let keys = c.getattr("DispatchKey")?;
        let excluded = NOT_PLAIN_KEYS
            .iter()
            .filter_map(|n| keys.getattr(*n).ok().map(Bound::unbind))
            .collect();
        Ok((c.getattr("_dispatch_keys")?.unbind(), excluded))
    })?;
    let ks = dispatch_keys.bind(py).call1((v,))?;
    for k in excluded {
        if ks.call_method1("has", (k.bind(py),))?.is_truthy()? {
            return Ok(None);
        }
    }
    Ok(Some(ks.call_method0("raw_repr")?.extract()?))
}

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
        let torch = py.import_cached("torch")?;
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
    pub requires_grad: bool,
    /// `str(dtype)`, e.g. `torch.float32` (for messages without the GIL).
    pub dtype_name: String,
    /// Whether the native reader may be used: the type does not override
    /// `__torch_dispatch__` (such subclasses may compute sizes in Python).
    native_ok: bool,
    /// The raw dispatch key set, for plain strided tensors (None otherwise).
    pub keys: Option<u64>,
    /// The shim dtype code (-1: unknown; the TensorImpl fast path is then off).
    dtype_code: i32,
    /// Sizes then strides (none for non-strided layouts) in one allocation, so the hot path
    /// touches one cache line; see [`sizes`](Self::sizes) and [`strides`](Self::strides).
    shape: Box<[i64]>,
    ndim: usize,
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
        let keys = if native_ok { plain_keys(v)? } else { None };
        let dtype_code = native_reader()
            .and_then(|r| r.dtype_code(dtype.as_ptr()))
            .unwrap_or(-1);
        Ok(TensorMeta {
            keys,
            dtype_code,
            py_type: ty.unbind(),
            dtype_name: dtype.str()?.to_cow()?.into_owned(),
            dtype: dtype.unbind(),
            layout: layout.unbind(),
            device_type: view.device_type,
            device_index: view.device_index,
            ndim: view.sizes.len(),
            shape: view
                .sizes
                .iter()
                .chain(view.strides.iter())
                .copied()
                .collect(),
            requires_grad: view.requires_grad,
            native_ok,
        })
    }

    pub fn sizes(&self) -> &[i64] {
        &self.shape[..self.ndim]
    }

    /// Empty for non-strided layouts.
    pub fn strides(&self) -> &[i64] {
        &self.shape[self.ndim..]
    }

    /// Leaves the given size and stride dimensions to the shape guard (they are symbolic in
    /// the graph).
    pub fn relax(&mut self, sizes: &[usize], strides: &[usize]) {
        let ndim = self.ndim;
        for &d in sizes.iter().filter(|&&d| d < ndim) {
            self.shape[d] = ANY_SIZE;
        }
        for &d in strides.iter().filter(|&&d| d < ndim) {
            if let Some(s) = self.shape.get_mut(ndim + d) {
                *s = ANY_SIZE;
            }
        }
    }

    fn show(v: &[i64]) -> String {
        let items: Vec<String> = v
            .iter()
            .map(|&x| {
                if x == ANY_SIZE {
                    "*".to_string()
                } else {
                    x.to_string()
                }
            })
            .collect();
        format!("[{}]", items.join(", "))
    }

    pub fn clone_ref(&self, py: Python<'_>) -> TensorMeta {
        TensorMeta {
            py_type: self.py_type.clone_ref(py),
            dtype: self.dtype.clone_ref(py),
            layout: self.layout.clone_ref(py),
            dtype_name: self.dtype_name.clone(),
            shape: self.shape.clone(),
            ..*self
        }
    }

    fn matches_view(&self, view: &TensorView<'_>) -> bool {
        view.dtype == self.dtype.as_ptr()
            && view.device_type == self.device_type
            && view.device_index == self.device_index
            && view.requires_grad == self.requires_grad
            && view.layout == self.layout.as_ptr()
            && same_ints(&view.sizes, self.sizes())
            && same_ints(&view.strides, self.strides())
    }

    /// Whether `v` still matches (hot path: native read when active).
    #[inline]
    pub fn matches(&self, v: &Bound<'_, PyAny>) -> bool {
        if v.get_type_ptr() != self.py_type.as_ptr().cast() {
            return false;
        }
        if self.native_ok {
            if let Some(r) = native_reader() {
                if let (Some(fields), Some(keys)) = (&r.fields, self.keys) {
                    // SAFETY: `v`'s exact type is `py_type`, which was a torch.Tensor
                    // subclass at trace time (a recorded key set implies it), so `v` is a
                    // THPVariable.
                    let imp = unsafe { r.impl_ptr_unchecked(v) };
                    if !imp.is_null() {
                        // SAFETY: a live TensorImpl and `fields` validated at start-up; the
                        // key set is compared first, so sizes are read only from tensors of
                        // the recorded (plain) kind.
                        return unsafe { self.matches_fields(fields, keys, imp, r) };
                    }
                }
                if let Some(view) = r.view(v) {
                    return self.matches_view(&view) && self.keys_match(v);
                }
            }
        }
        python_view(v).is_ok_and(|view| self.matches_view(&view)) && self.keys_match(v)
    }

    /// The TensorImpl fast path: key set, dtype, device, sizes, strides, requires_grad.
    ///
    /// # Safety
    /// `imp` is the live TensorImpl of the tensor being checked; `fields` was validated.
    #[inline]
    unsafe fn matches_fields(
        &self,
        fields: &super::tensor_impl::ImplLayout,
        keys: u64,
        imp: *const std::ffi::c_void,
        r: &super::tensor_native::NativeReader,
    ) -> bool {
        // SAFETY: forwarded from the caller; the key set is read first (at a validated
        // offset) and everything else only when it equals the recorded plain key set.
        let Some(f) = (unsafe { fields.read(imp) }) else {
            return false;
        };
        f.keys == keys
            && i32::from(f.dtype) == self.dtype_code
            && i32::from(f.device[0]) == self.device_type
            && i32::from(f.device[1] as i8) == self.device_index
            && f.device[2] == 1
            && same_ints(f.sizes, self.sizes())
            && same_ints(f.strides, self.strides())
            && (if f.has_autograd_meta {
                r.requires_grad(imp)
            } else {
                false
            }) == self.requires_grad
    }

    /// The recorded key set (if any) equals `v`'s (slow path: a Python call).
    fn keys_match(&self, v: &Bound<'_, PyAny>) -> bool {
        match self.keys {
            None => true,
            Some(k) => plain_keys(v).ok().flatten() == Some(k),
        }
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
        if !same_ints(&view.sizes, self.sizes()) {
            return format!(
                "{source}.shape: {} -> {:?}",
                Self::show(self.sizes()),
                &*view.sizes
            );
        }
        if !same_ints(&view.strides, self.strides()) {
            return format!(
                "{source}.stride(): {} -> {:?}",
                Self::show(self.strides()),
                &*view.strides
            );
        }
        if let Some(k) = self.keys {
            let now = plain_keys(v).ok().flatten();
            if now != Some(k) {
                let show = |k: Option<u64>| match k {
                    Some(k) => key_names(v.py(), k),
                    None => "a non-plain tensor".to_string(),
                };
                return format!("{source} dispatch keys: {} -> {}", show(Some(k)), show(now));
            }
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
            "tensor({dtype}, {}, size={}, stride={}, requires_grad={})",
            device_name(self.device_type, self.device_index),
            Self::show(self.sizes()),
            Self::show(self.strides()),
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
