//! Native tensor-metadata reader: reads sizes, strides, dtype, device, layout and
//! requires_grad of a `torch.Tensor` without Python attribute access, through symbols of
//! the torch libraries the interpreter already loaded.
//!
//! How the `at::Tensor` is found: `libtorch_python` does not export `THPVariable_Unpack`
//! (it is an inline function in `python_variable.h`). In torch 2.15 the Python object is
//! `struct THPVariable { PyObject_HEAD; at::Tensor cdata; PyObject* hooks[2]; }`, so the
//! `at::Tensor` lives right after the object header, and an `at::Tensor*` is exactly what
//! the stable AOTI C shim calls an `AtenTensorHandle`. Everything about this is checked
//! at init before the reader is enabled:
//! * `torch._C.TensorBase.__basicsize__` equals the size of that struct,
//! * the exported `THPVariableClass` is `torch._C.TensorBase`,
//! * `THPVariable_Wrap(tensor)` maps the handle back to the very same Python object,
//! * and a set of diverse tensors reads identically natively and through Python.
//!
//! If anything is missing or disagrees, the reader stays off and guards read tensors
//! through Python attributes ([`native_tensor_reader_active`] reports which).

use crate::ImportCached;
use std::ffi::c_void;
use std::os::raw::c_int;
use std::sync::{Mutex, OnceLock};

use libloading::os::unix::{Library, RTLD_NOW};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyType};

use super::tensor_impl::{self, ImplLayout, Probe};
use super::tensor_meta::{device_type_code, python_view, TensorView};

#[cfg(target_os = "linux")]
pub(crate) const RTLD_NOLOAD: c_int = 0x4;
#[cfg(not(target_os = "linux"))]
pub(crate) const RTLD_NOLOAD: c_int = 0x10;

/// `PyObject_HEAD` + `at::Tensor` (one pointer) + two `PyObject*` hook slots.
const THPVARIABLE_SIZE: usize = std::mem::size_of::<ffi::PyObject>() + 3 * 8;
/// Offset of `THPVariable::cdata` (the `at::Tensor`).
const CDATA_OFFSET: usize = std::mem::size_of::<ffi::PyObject>();
/// `c10::Layout::Strided`'s shim name; non-strided tensors are read through Python.
const LAYOUT_NAMES: [&str; 8] = [
    "strided",
    "sparse_coo",
    "sparse_csr",
    "sparse_csc",
    "sparse_bsr",
    "sparse_bsc",
    "_mkldnn",
    "jagged",
];
const DTYPE_NAMES: [&str; 25] = [
    "float8_e5m2",
    "float8_e4m3fn",
    "float8_e5m2fnuz",
    "float8_e4m3fnuz",
    "float8_e8m0fnu",
    "bfloat16",
    "float16",
    "float32",
    "float64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "int8",
    "int16",
    "int32",
    "int64",
    "bool",
    "complex32",
    "complex64",
    "complex128",
    "float4_e2m1fn_x2",
    "qint8",
    "quint8",
    "qint32",
];

type GetPtr = unsafe extern "C" fn(*mut c_void, *mut *mut i64) -> i32;
type GetI64 = unsafe extern "C" fn(*mut c_void, *mut i64) -> i32;
type GetI32 = unsafe extern "C" fn(*mut c_void, *mut i32) -> i32;
type ConstI32 = unsafe extern "C" fn() -> i32;
type ImplBool = unsafe extern "C" fn(*const c_void) -> bool;
type WrapFn = unsafe extern "C" fn(*const c_void) -> *mut ffi::PyObject;

pub(crate) struct NativeReader {
    _libs: Vec<Library>,
    /// `torch.Tensor` (the exported `THPVariableClass`); instances are type-checked
    /// against it before their `at::Tensor` is touched.
    tensor_class: Py<PyType>,
    get_dim: GetI64,
    get_sizes: GetPtr,
    get_strides: GetPtr,
    get_dtype: GetI32,
    get_device_type: GetI32,
    get_device_index: GetI32,
    get_layout: GetI32,
    requires_grad: ImplBool,
    strided_code: i32,
    /// dtype code -> the `torch.dtype` singleton (strong refs; compared by pointer).
    dtypes: Vec<Option<Py<PyAny>>>,
    /// layout code -> the `torch.layout` singleton.
    layouts: Vec<Option<Py<PyAny>>>,
    /// TensorImpl field offsets for the guard's hot path (None: not located; the shim
    /// reads are used).
    pub(crate) fields: Option<ImplLayout>,
}

static NATIVE: OnceLock<NativeReader> = OnceLock::new();
static NOTE: Mutex<String> = Mutex::new(String::new());

/// Whether guards read tensor metadata natively (else through Python attributes).
pub fn native_tensor_reader_active() -> bool {
    NATIVE.get().is_some()
}

/// Why the native reader is or is not active (set by [`init_native_tensor_reader`]).
pub fn native_tensor_reader_note() -> String {
    NOTE.lock().map(|s| s.clone()).unwrap_or_default()
}

pub(crate) fn native_reader() -> Option<&'static NativeReader> {
    NATIVE.get()
}

/// The `torch/lib` directory of the imported torch.
pub fn torch_lib_dir(py: Python<'_>) -> PyResult<String> {
    let file: String = py.import_cached("torch")?.getattr("__file__")?.extract()?;
    let dir = std::path::Path::new(&file)
        .parent()
        .map(|p| p.join("lib"))
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("torch.__file__ has no parent"))?;
    Ok(dir.to_string_lossy().into_owned())
}

/// Opens the already-loaded torch libraries in `torch_lib_dir`, resolves the symbols and
/// validates them against Python reads. Returns whether the native reader is active; on
/// `false`, [`native_tensor_reader_note`] says why. Idempotent once active.
pub fn init_native_tensor_reader(py: Python<'_>, torch_lib_dir: &str) -> PyResult<bool> {
    if NATIVE.get().is_some() {
        return Ok(true);
    }
    let result = py
        .import_cached("torch")
        .map_err(|e| format!("torch is not importable: {e}"))
        .and_then(|_| load(py, torch_lib_dir))
        .and_then(|mut reader| {
            let (n, fields) = validate(py, &reader)?;
            let note = match &fields {
                Ok(_) => "TensorImpl fields located".to_string(),
                Err(why) => format!("TensorImpl fields not used: {why}"),
            };
            reader.fields = fields.ok();
            Ok((reader, n, note))
        });
    let (active, note) = match result {
        Ok((reader, n, fields)) => {
            let _ = NATIVE.set(reader);
            (
                true,
                format!("native tensor reader active ({n} tensors validated; {fields})"),
            )
        }
        Err(why) => (
            false,
            format!("native tensor reader off, using Python: {why}"),
        ),
    };
    if let Ok(mut s) = NOTE.lock() {
        *s = note;
    }
    Ok(active)
}

fn open(dir: &str, name: &str) -> Result<Library, String> {
    let path = format!("{dir}/{name}");
    // SAFETY: RTLD_NOLOAD only returns a handle to a library that is already loaded (by
    // `import torch`), so no library initialisers run here.
    unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_NOLOAD) }
        .map_err(|e| format!("{name} is not loaded from {dir}: {e}"))
}

/// Resolves `name` in `lib` as a value of type `T` (a function pointer type or a data
/// pointer).
///
/// # Safety
/// `T` must match the symbol's real type; callers pass the shim/ABI signatures from
/// torch's headers.
unsafe fn sym<T: Copy>(lib: &Library, name: &str) -> Result<T, String> {
    // SAFETY: forwarded to the caller (type agreement); the symbol stays valid as long as
    // `lib` (kept in NativeReader) is open.
    unsafe { lib.get::<T>(name.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| format!("missing symbol {name}: {e}"))
}

fn load(py: Python<'_>, dir: &str) -> Result<NativeReader, String> {
    let c10 = open(dir, "libc10.so")?;
    let cpu = open(dir, "libtorch_cpu.so")?;
    let tpy = open(dir, "libtorch_python.so")?;
    let torch = py.import_cached("torch").map_err(|e| e.to_string())?;
    let lookup = |kind: &str, name: &str| -> Result<Option<Py<PyAny>>, String> {
        match torch.getattr(name) {
            Ok(obj) => Ok(Some(obj.unbind())),
            Err(_) if kind == "dtype" => Ok(None),
            Err(e) => Err(format!("torch.{name}: {e}")),
        }
    };
    let mut dtypes: Vec<Option<Py<PyAny>>> = Vec::new();
    for name in DTYPE_NAMES {
        // SAFETY: `aoti_torch_dtype_*` are `int32_t f(void)` in shim.h.
        let Ok(f) = (unsafe { sym::<ConstI32>(&cpu, &format!("aoti_torch_dtype_{name}")) }) else {
            continue;
        };
        // SAFETY: a constant getter with no arguments and no side effects.
        let code = unsafe { f() };
        let slot = usize::try_from(code).map_err(|_| format!("dtype code {code}"))?;
        if slot >= 256 {
            return Err(format!("implausible dtype code {code} for {name}"));
        }
        if dtypes.len() <= slot {
            dtypes.resize_with(slot + 1, || None);
        }
        dtypes[slot] = lookup("dtype", name)?;
    }
    let mut layouts: Vec<Option<Py<PyAny>>> = Vec::new();
    let mut strided_code = -1;
    for name in LAYOUT_NAMES {
        // SAFETY: `aoti_torch_layout_*` are `int32_t f(void)` in shim.h.
        let f = unsafe { sym::<ConstI32>(&cpu, &format!("aoti_torch_layout_{name}"))? };
        // SAFETY: a constant getter with no arguments and no side effects.
        let code = unsafe { f() };
        let slot = usize::try_from(code)
            .ok()
            .filter(|s| *s < 64)
            .ok_or_else(|| format!("implausible layout code {code}"))?;
        if layouts.len() <= slot {
            layouts.resize_with(slot + 1, || None);
        }
        layouts[slot] = lookup("layout", name)?;
        if name == "strided" {
            strided_code = code;
        }
    }
    for (name, expected) in [("cpu", "cpu"), ("meta", "meta"), ("cuda", "cuda")] {
        // SAFETY: `aoti_torch_device_type_*` are `int32_t f(void)` in shim.h.
        let f = unsafe { sym::<ConstI32>(&cpu, &format!("aoti_torch_device_type_{name}"))? };
        // SAFETY: a constant getter.
        let code = unsafe { f() };
        if Some(code) != device_type_code(expected) {
            return Err(format!(
                "device type code of {name} is {code}, table disagrees"
            ));
        }
    }
    let tensor_class = torch
        .getattr("Tensor")
        .and_then(|t| Ok(t.cast_into::<PyType>()?.unbind()))
        .map_err(|e| format!("torch.Tensor: {e}"))?;
    // SAFETY (all `sym` calls below): signatures are the ones declared in shim.h
    // (`AOTITorchError f(AtenTensorHandle, T*)`), and for the C++ member
    // `bool c10::TensorImpl::requires_grad() const` the Itanium ABI passes `this` as the
    // only argument.
    let reader = unsafe {
        NativeReader {
            get_dim: sym(&cpu, "aoti_torch_get_dim")?,
            get_sizes: sym(&cpu, "aoti_torch_get_sizes")?,
            get_strides: sym(&cpu, "aoti_torch_get_strides")?,
            get_dtype: sym(&cpu, "aoti_torch_get_dtype")?,
            get_device_type: sym(&cpu, "aoti_torch_get_device_type")?,
            get_device_index: sym(&cpu, "aoti_torch_get_device_index")?,
            get_layout: sym(&cpu, "aoti_torch_get_layout")?,
            requires_grad: sym(&c10, "_ZNK3c1010TensorImpl13requires_gradEv")?,
            strided_code,
            dtypes,
            layouts,
            fields: None,
            tensor_class,
            _libs: vec![c10, cpu, tpy],
        }
    };
    Ok(reader)
}

/// Structural and behavioural validation; returns the number of tensors compared and the
/// TensorImpl field offsets located on them (or why they were not).
#[allow(clippy::type_complexity)]
fn validate(
    py: Python<'_>,
    reader: &NativeReader,
) -> Result<(usize, Result<ImplLayout, String>), String> {
    let class = reader.tensor_class.bind(py);
    let base = py
        .import_cached("torch")
        .and_then(|t| t.getattr("_C"))
        .and_then(|c| c.getattr("TensorBase"))
        .map_err(|e| format!("torch._C.TensorBase: {e}"))?;
    if !class.is_subclass(&base).unwrap_or(false) {
        return Err("torch.Tensor does not derive from torch._C.TensorBase".into());
    }
    let basicsize: usize = base
        .getattr("__basicsize__")
        .and_then(|b| b.extract())
        .map_err(|e| e.to_string())?;
    if basicsize != THPVARIABLE_SIZE {
        return Err(format!(
            "THPVariable layout changed: __basicsize__ {basicsize} != {THPVARIABLE_SIZE}"
        ));
    }
    let tpy = &reader._libs[2];
    // SAFETY: `THPVariableClass` is declared `PyObject* THPVariableClass` (a data symbol);
    // dlsym returns its address, which stays valid while libtorch_python is loaded.
    let class_slot = unsafe { sym::<*const *mut ffi::PyObject>(tpy, "THPVariableClass")? };
    // SAFETY: reading the pointer variable at the address dlsym returned.
    let exported = unsafe { *class_slot };
    if exported != class.as_ptr() {
        return Err("THPVariableClass is not torch.Tensor".into());
    }
    // SAFETY: `PyObject* THPVariable_Wrap(const at::TensorBase&)`: the reference is passed
    // as a pointer; at::Tensor derives from TensorBase without adding members.
    let wrap = unsafe { sym::<WrapFn>(tpy, "_Z16THPVariable_WrapRKN2at10TensorBaseE")? };
    let code = c"import torch
_b = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
tensors = [
    torch.zeros(3),
    torch.ones(2, 3, dtype=torch.float64),
    _b.transpose(0, 2),
    _b[:, 1:, ::2],
    torch.tensor(5, dtype=torch.int64),
    torch.empty(0, 4, dtype=torch.bool),
    torch.randn(4, 5, requires_grad=True),
    torch.nn.Parameter(torch.randn(3, 3)),
    torch.zeros(2, 3, dtype=torch.bfloat16).t(),
    torch.ones(3, dtype=torch.uint8).expand(4, 3),
    torch.zeros(1, 3, 4, 4).to(memory_format=torch.channels_last),
    torch.zeros(3, dtype=torch.complex64),
    torch.randn(3, requires_grad=True) * 2,
    torch.zeros(2, 5, device='meta', dtype=torch.float16),
    torch.zeros(7, dtype=torch.int32)[1::3],
    torch.zeros(2, 1, 3, 1, 2, 2, dtype=torch.float64).transpose(0, 5),
    torch.zeros(1, 2, 1, 2, 1, 2, 3, device='meta', dtype=torch.int16),
    torch.zeros(3, dtype=torch.complex64).conj(),
    torch.zeros(2, 2, dtype=torch.int8, device='meta').t(),
]
with torch.inference_mode():
    tensors.append(torch.ones(2, 3, dtype=torch.int64))
keys = [torch._C._dispatch_keys(t).raw_repr() for t in tensors]
";
    let ns = pyo3::types::PyDict::new(py);
    py.run(code, Some(&ns), Some(&ns))
        .map_err(|e| format!("building validation tensors: {e}"))?;
    let list = ns
        .get_item("tensors")
        .ok()
        .flatten()
        .and_then(|l| l.cast_into::<PyList>().ok())
        .ok_or("no validation tensors")?;
    let keys: Vec<u64> = ns
        .get_item("keys")
        .ok()
        .flatten()
        .and_then(|k| k.extract().ok())
        .ok_or("no validation key sets")?;
    let mut probes = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let native = reader
            .view(&t)
            .ok_or(format!("tensor {i}: native read failed"))?;
        if let (Some(imp), Some(&k)) = (reader.impl_ptr(&t), keys.get(i)) {
            probes.push(Probe {
                imp: imp.cast(),
                keys: k,
                dtype: reader.dtype_code(native.dtype).unwrap_or(-1),
                device_type: native.device_type,
                device_index: native.device_index,
                sizes: native.sizes.to_vec(),
                strides: native.strides.to_vec(),
                requires_grad: native.requires_grad,
            });
        }
        let python = python_view(&t).map_err(|e| format!("tensor {i}: {e}"))?;
        if native != python {
            return Err(format!(
                "tensor {i}: native {native:?} != python {python:?}"
            ));
        }
        // SAFETY: `view` succeeded, so `t` is a THPVariable whose cdata is a defined
        // at::Tensor at CDATA_OFFSET; Wrap returns a new reference to its Python object.
        let back = unsafe { wrap((t.as_ptr() as *const u8).add(CDATA_OFFSET).cast()) };
        if back.is_null() {
            return Err(format!("tensor {i}: THPVariable_Wrap failed"));
        }
        // SAFETY: `back` is a new reference we own.
        let back = unsafe { Bound::from_owned_ptr(py, back) };
        if back.as_ptr() != t.as_ptr() {
            return Err(format!("tensor {i}: THPVariable_Wrap round trip differs"));
        }
    }
    // SAFETY: every probe's TensorImpl is kept alive by `list` for the whole search.
    let fields = unsafe { tensor_impl::find(&probes) };
    Ok((list.len(), fields))
}

impl NativeReader {
    /// The TensorImpl behind `v`, whose exact type the caller has already matched against
    /// a `torch.Tensor` subclass (no type check here).
    ///
    /// # Safety
    /// `v` must be an instance of `torch.Tensor`.
    #[inline]
    pub(crate) unsafe fn impl_ptr_unchecked(&self, v: &Bound<'_, PyAny>) -> *const c_void {
        // SAFETY: forwarded (a THPVariable), as in `view`.
        unsafe { *((v.as_ptr() as *const u8).add(CDATA_OFFSET) as *const *const c_void) }
    }

    /// The TensorImpl behind `v` if `v` is a `torch.Tensor` (None otherwise).
    #[inline]
    pub(crate) fn impl_ptr(&self, v: &Bound<'_, PyAny>) -> Option<*const c_void> {
        let obj = v.as_ptr();
        // SAFETY: PyObject_TypeCheck reads type pointers of live objects.
        if unsafe { ffi::PyObject_TypeCheck(obj, self.tensor_class.as_ptr().cast()) } == 0 {
            return None;
        }
        // SAFETY: as in `view`: the at::Tensor at CDATA_OFFSET is one pointer to its
        // TensorImpl.
        let imp = unsafe { *((obj as *const u8).add(CDATA_OFFSET) as *const *const c_void) };
        (!imp.is_null()).then_some(imp)
    }

    /// `TensorImpl::requires_grad()` of a live TensorImpl.
    #[inline]
    pub(crate) fn requires_grad(&self, imp: *const c_void) -> bool {
        // SAFETY: callers pass a live TensorImpl; the function only reads autograd meta.
        unsafe { (self.requires_grad)(imp) }
    }

    /// The shim dtype code of a `torch.dtype` singleton.
    pub(crate) fn dtype_code(&self, dtype: *mut ffi::PyObject) -> Option<i32> {
        self.dtypes
            .iter()
            .position(|d| d.as_ref().is_some_and(|d| d.as_ptr() == dtype))
            .and_then(|p| i32::try_from(p).ok())
    }

    /// Reads `v`'s metadata natively; `None` when `v` is not a tensor, not strided, or
    /// any shim call reports an error (callers then read through Python).
    #[inline]
    pub(crate) fn view<'a>(&self, v: &'a Bound<'_, PyAny>) -> Option<TensorView<'a>> {
        let obj = v.as_ptr();
        // SAFETY: PyObject_TypeCheck reads type pointers of live objects.
        if unsafe { ffi::PyObject_TypeCheck(obj, self.tensor_class.as_ptr().cast()) } == 0 {
            return None;
        }
        // SAFETY: `obj` is an instance of torch.Tensor (a torch._C.TensorBase), whose layout (validated at
        // init via __basicsize__, THPVariableClass and THPVariable_Wrap round trips) has
        // the at::Tensor at CDATA_OFFSET.
        let handle = unsafe { (obj as *mut u8).add(CDATA_OFFSET) }.cast::<c_void>();
        // SAFETY: the at::Tensor is one intrusive pointer to its TensorImpl.
        let imp = unsafe { *(handle as *const *const c_void) };
        if imp.is_null() {
            return None;
        }
        let (mut layout, mut dim, mut dtype, mut dev_t, mut dev_i) = (0i32, 0i64, 0i32, 0, 0);
        let mut sizes: *mut i64 = std::ptr::null_mut();
        let mut strides: *mut i64 = std::ptr::null_mut();
        // SAFETY: `handle` is a valid AtenTensorHandle (above); the shim functions catch
        // all C++ exceptions and return non-zero, and write only through the out pointer.
        let ok = unsafe {
            (self.get_layout)(handle, &mut layout) == 0
                && layout == self.strided_code
                && (self.get_dim)(handle, &mut dim) == 0
                && (self.get_sizes)(handle, &mut sizes) == 0
                && (self.get_strides)(handle, &mut strides) == 0
                && (self.get_dtype)(handle, &mut dtype) == 0
                && (self.get_device_type)(handle, &mut dev_t) == 0
                && (self.get_device_index)(handle, &mut dev_i) == 0
        };
        let n = usize::try_from(dim).ok()?;
        if !ok || (n > 0 && (sizes.is_null() || strides.is_null())) {
            return None;
        }
        let dtype = self.dtypes.get(usize::try_from(dtype).ok()?)?.as_ref()?;
        let layout = self.layouts.get(usize::try_from(layout).ok()?)?.as_ref()?;
        // SAFETY: `imp` is the live TensorImpl; requires_grad() only reads autograd meta.
        let requires_grad = unsafe { (self.requires_grad)(imp) };
        let (sizes, strides): (&[i64], &[i64]) = if n == 0 {
            (&[], &[])
        } else {
            // SAFETY: the shim returned pointers to `dim` int64 sizes/strides owned by the
            // TensorImpl, which `v` keeps alive for 'a; no Python code runs while the
            // slices are in use by the caller's comparison.
            unsafe {
                (
                    std::slice::from_raw_parts(sizes, n),
                    std::slice::from_raw_parts(strides, n),
                )
            }
        };
        Some(TensorView {
            dtype: dtype.as_ptr(),
            layout: layout.as_ptr(),
            device_type: dev_t,
            device_index: dev_i,
            sizes: sizes.into(),
            strides: strides.into(),
            requires_grad,
        })
    }
}
