//! Direct reads of `c10::TensorImpl` fields for the tensor guard's hot path: the dispatch
//! key set, dtype, device, and the sizes/strides storage, at byte offsets found at start-up.
//!
//! `TensorImpl`'s layout is not public API, so nothing here is assumed: the offsets are
//! located by scanning the first [`SCAN`] bytes of a set of probe tensors for the values
//! the stable readers report (the AOTI shim for dim, sizes, strides, dtype and device;
//! `torch._C._dispatch_keys(t).raw_repr()` for the key set), and an offset is used only if
//! it is the one position that agrees on every probe. Sizes and strides are then read the
//! way `c10::impl::SizesAndStrides` stores them (inline up to [`INLINE_DIMS`] dimensions,
//! else behind a pointer) and compared against the shim for every probe, including probes
//! past the inline limit. If anything disagrees the fast path stays off and the guard uses
//! the shim reads.
//!
//! Only tensors whose key set is the one recorded at trace time are read this way, and a
//! key set is recorded only for plain strided tensors (no Python, functorch, sparse or
//! nested keys: see `TensorMeta::read`), whose sizes live in `SizesAndStrides`.

use std::ffi::c_void;

/// Bytes of a TensorImpl searched for fields (its size in torch 2.x is 176 or more).
pub(crate) const SCAN: usize = 176;
/// `SizesAndStrides` keeps sizes and strides inline up to this many dimensions.
const INLINE_DIMS: usize = 5;

/// Byte offsets of the fields in a TensorImpl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ImplLayout {
    /// `DispatchKeySet key_set_` (u64).
    pub keys: usize,
    /// `SizesAndStrides::size_` (u64); the inline arrays or the out-of-line pointer follow.
    pub dim: usize,
    /// `caffe2::TypeMeta data_type_` (u16, equal to the ScalarType code).
    pub dtype: usize,
    /// `std::optional<Device> device_opt_`: type byte, index byte, engaged flag.
    pub device: usize,
    /// `std::unique_ptr<AutogradMetaInterface> autograd_meta_`: null means
    /// `requires_grad() == false` (`TensorImpl::requires_grad` is
    /// `autograd_meta_ && autograd_meta_->requires_grad()`).
    pub autograd_meta: usize,
}

/// What one probe tensor is, per the stable readers.
pub(crate) struct Probe {
    pub imp: *const u8,
    pub keys: u64,
    pub dtype: i32,
    pub device_type: i32,
    pub device_index: i32,
    pub sizes: Vec<i64>,
    pub strides: Vec<i64>,
    pub requires_grad: bool,
}

/// The fields of one TensorImpl the guard compares, read through `layout`.
pub(crate) struct Fast<'a> {
    pub keys: u64,
    pub dtype: u16,
    /// (device type, device index as i8, engaged flag)
    pub device: [u8; 3],
    pub sizes: &'a [i64],
    pub strides: &'a [i64],
    /// Whether the TensorImpl has autograd meta (if not, it does not require grad).
    pub has_autograd_meta: bool,
}

/// # Safety
/// `p + off .. p + off + size_of::<T>()` must lie inside a live object.
unsafe fn rd<T: Copy>(p: *const u8, off: usize) -> T {
    // SAFETY: forwarded to the caller.
    unsafe { p.add(off).cast::<T>().read_unaligned() }
}

impl ImplLayout {
    /// Reads the guarded fields of `imp`.
    ///
    /// # Safety
    /// `imp` is a live TensorImpl of a plain strided tensor and `self` was validated by
    /// [`find`]; the returned slices borrow the TensorImpl's storage and must not outlive
    /// any Python code that could resize the tensor.
    #[inline]
    pub(crate) unsafe fn read<'a>(&self, imp: *const c_void) -> Option<Fast<'a>> {
        let p = imp.cast::<u8>();
        // SAFETY: every offset was found inside the first SCAN bytes of TensorImpls and
        // validated on probes; sizes/strides follow the SizesAndStrides storage rule that
        // was validated against the shim.
        unsafe {
            let n = usize::try_from(rd::<u64>(p, self.dim)).ok()?;
            if n > 64 {
                return None;
            }
            let sizes: *const i64 = if n <= INLINE_DIMS {
                p.add(self.dim + 8).cast()
            } else {
                rd::<*const i64>(p, self.dim + 8)
            };
            let strides: *const i64 = if n <= INLINE_DIMS {
                p.add(self.dim + 8 + 8 * INLINE_DIMS).cast()
            } else {
                sizes.add(n)
            };
            if sizes.is_null() {
                return None;
            }
            Some(Fast {
                keys: rd(p, self.keys),
                dtype: rd(p, self.dtype),
                device: rd(p, self.device),
                sizes: std::slice::from_raw_parts(sizes, n),
                strides: std::slice::from_raw_parts(strides, n),
                has_autograd_meta: !rd::<*const u8>(p, self.autograd_meta).is_null(),
            })
        }
    }
}

/// The single offset (stepping by `step`, value of `width` bytes) at which `want(probe)`
/// is found in every probe; None if there is no such offset or more than one.
fn unique_offset(
    probes: &[Probe],
    step: usize,
    width: usize,
    want: impl Fn(&Probe, usize) -> bool,
) -> Option<usize> {
    let mut found = None;
    for off in (0..=SCAN - width).step_by(step) {
        if probes.iter().all(|pr| want(pr, off)) {
            if found.is_some() {
                return None;
            }
            found = Some(off);
        }
    }
    found
}

/// Locates the fields on `probes` and checks every probe reads back exactly.
///
/// # Safety
/// Each probe's `imp` is a live TensorImpl of at least [`SCAN`] bytes, and the probe
/// tensors stay alive during the call.
pub(crate) unsafe fn find(probes: &[Probe]) -> Result<ImplLayout, String> {
    // The probes must tell fields apart: several dims (inline and out-of-line), dtypes
    // and device types.
    let distinct = |f: &dyn Fn(&Probe) -> i64| {
        let mut v: Vec<i64> = probes.iter().map(f).collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    if distinct(&|p| p.sizes.len() as i64) < 4
        || !probes.iter().any(|p| p.sizes.len() > INLINE_DIMS)
        || distinct(&|p| i64::from(p.dtype)) < 4
        || distinct(&|p| i64::from(p.device_type)) < 2
    {
        return Err("the probe tensors do not vary enough".into());
    }
    // SAFETY (reads below): offsets stay within the first SCAN bytes of each TensorImpl.
    let keys = unique_offset(
        probes,
        8,
        8,
        |p, o| unsafe { rd::<u64>(p.imp, o) } == p.keys,
    )
    .ok_or("key set offset not found")?;
    let dim = unique_offset(probes, 8, 8, |p, o| {
        let v = unsafe { rd::<u64>(p.imp, o) };
        v == p.sizes.len() as u64
    })
    .ok_or("dim offset not found")?;
    let dtype = unique_offset(probes, 2, 2, |p, o| {
        i32::from(unsafe { rd::<u16>(p.imp, o) }) == p.dtype
    })
    .ok_or("dtype offset not found")?;
    let device = unique_offset(probes, 1, 3, |p, o| {
        let [t, i, engaged]: [u8; 3] = unsafe { rd(p.imp, o) };
        i32::from(t) == p.device_type && i32::from(i as i8) == p.device_index && engaged == 1
    })
    .ok_or("device offset not found")?;
    // The one word that is non-null on every probe that requires grad and null on at
    // least three probes (pointers are never null; sizes, offsets and counts are zero on
    // some probes of each kind, including grad probes).
    let mut autograd_meta = None;
    for off in (0..=SCAN - 8).step_by(8) {
        // SAFETY: within the first SCAN bytes of live TensorImpls.
        let word = |p: &Probe| unsafe { rd::<u64>(p.imp, off) };
        let ok = probes.iter().all(|p| !p.requires_grad || word(p) != 0)
            && probes.iter().filter(|p| word(p) == 0).count() >= 3;
        if ok {
            if autograd_meta.is_some() {
                return Err("autograd meta offset is ambiguous".into());
            }
            autograd_meta = Some(off);
        }
    }
    let autograd_meta = autograd_meta.ok_or("autograd meta offset not found")?;
    if !probes.iter().any(|p| p.requires_grad) {
        return Err("no probe requires grad".into());
    }
    if dim + 8 + 16 * INLINE_DIMS > SCAN {
        return Err("sizes storage runs past the scanned bytes".into());
    }
    let layout = ImplLayout {
        keys,
        dim,
        dtype,
        device,
        autograd_meta,
    };
    for (i, p) in probes.iter().enumerate() {
        // SAFETY: a live probe TensorImpl and the layout just located.
        let f = unsafe { layout.read(p.imp.cast()) }.ok_or(format!("probe {i}: unreadable"))?;
        if p.requires_grad && !f.has_autograd_meta {
            return Err(format!("probe {i}: requires grad without autograd meta"));
        }
        if f.sizes != p.sizes.as_slice() || f.strides != p.strides.as_slice() {
            return Err(format!(
                "probe {i}: sizes/strides {:?}/{:?} != {:?}/{:?}",
                f.sizes, f.strides, p.sizes, p.strides
            ));
        }
    }
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake TensorImpl with torch 2.15's layout (keys 168, dim 56, dtype 160, device 162,
    /// autograd meta 24), plus the out-of-line sizes buffer it may point to.
    struct FakeImpl {
        bytes: Box<[u8; SCAN]>,
        _out_of_line: Vec<i64>,
    }

    fn fake(keys: u64, dtype: u16, dev: (u8, i8), sizes: &[i64], grad: bool) -> (FakeImpl, Probe) {
        let mut b = Box::new([0u8; SCAN]);
        let put =
            |b: &mut [u8; SCAN], off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(&mut b, 0, &0x7f00_dead_beef_u64.to_le_bytes()); // vtable-like pointer
        put(&mut b, 16, &0x55aa_0000_1000_u64.to_le_bytes()); // storage pointer
        if grad {
            put(&mut b, 24, &0x55aa_0000_2000_u64.to_le_bytes());
        }
        let n = sizes.len();
        let strides: Vec<i64> = (0..n).map(|i| sizes[i + 1..].iter().product()).collect();
        put(&mut b, 56, &(n as u64).to_le_bytes());
        let mut out = Vec::new();
        if n <= INLINE_DIMS {
            for (i, s) in sizes.iter().enumerate() {
                put(&mut b, 64 + 8 * i, &s.to_le_bytes());
                put(&mut b, 104 + 8 * i, &strides[i].to_le_bytes());
            }
        } else {
            out.extend_from_slice(sizes);
            out.extend_from_slice(&strides);
            put(&mut b, 64, &(out.as_ptr() as u64).to_le_bytes());
        }
        put(
            &mut b,
            152,
            &(sizes.iter().product::<i64>() as u64).to_le_bytes(),
        );
        put(&mut b, 160, &dtype.to_le_bytes());
        put(&mut b, 162, &[dev.0, dev.1 as u8, 1]);
        put(&mut b, 168, &keys.to_le_bytes());
        let probe = Probe {
            imp: b.as_ptr(),
            keys,
            dtype: i32::from(dtype),
            device_type: i32::from(dev.0),
            device_index: i32::from(dev.1),
            sizes: sizes.to_vec(),
            strides,
            requires_grad: grad,
        };
        (
            FakeImpl {
                bytes: b,
                _out_of_line: out,
            },
            probe,
        )
    }

    fn probe_set() -> Vec<(FakeImpl, Probe)> {
        vec![
            fake(0x9400010001, 6, (0, -1), &[3], false),
            fake(0x9400010001, 7, (0, -1), &[2, 3], false),
            fake(0x9400010001, 4, (0, -1), &[], false),
            fake(0x1400018000, 3, (9, -1), &[2, 2, 2, 2, 2, 2, 2], false),
            fake(0x9400010001, 6, (0, -1), &[4, 5], true),
            fake(0x9480010001, 9, (0, -1), &[3, 1, 2, 2, 2, 2], true),
            fake(0x1400018000, 11, (9, -1), &[1, 2, 3, 4], false),
        ]
    }

    #[test]
    fn locates_the_fields_of_a_known_layout() {
        let set = probe_set();
        let probes: Vec<Probe> = set.iter().map(|(_, p)| clone(p)).collect();
        // SAFETY: every probe points at a live SCAN-byte buffer (kept by `set`).
        let l = unsafe { find(&probes) }.expect("layout found");
        assert_eq!(
            l,
            ImplLayout {
                keys: 168,
                dim: 56,
                dtype: 160,
                device: 162,
                autograd_meta: 24
            }
        );
        for (f, p) in &set {
            // SAFETY: a live fake TensorImpl.
            let r = unsafe { l.read(f.bytes.as_ptr().cast()) }.unwrap();
            assert_eq!(r.sizes, p.sizes.as_slice());
            assert_eq!(r.strides, p.strides.as_slice());
            assert_eq!(r.has_autograd_meta, p.requires_grad);
        }
    }

    #[test]
    fn too_uniform_probes_are_refused() {
        let set = [
            fake(0x9400010001, 6, (0, -1), &[3], false),
            fake(0x9400010001, 6, (0, -1), &[4], true),
        ];
        let probes: Vec<Probe> = set.iter().map(|(_, p)| clone(p)).collect();
        // SAFETY: live buffers.
        assert!(unsafe { find(&probes) }.is_err());
    }

    #[test]
    fn a_probe_that_disagrees_is_refused() {
        let set = probe_set();
        let mut probes: Vec<Probe> = set.iter().map(|(_, p)| clone(p)).collect();
        probes[1].keys ^= 1; // no offset holds every probe's key set now
                             // SAFETY: live buffers.
        assert!(unsafe { find(&probes) }.is_err());
    }

    fn clone(p: &Probe) -> Probe {
        Probe {
            imp: p.imp,
            keys: p.keys,
            dtype: p.dtype,
            device_type: p.device_type,
            device_index: p.device_index,
            sizes: p.sizes.clone(),
            strides: p.strides.clone(),
            requires_grad: p.requires_grad,
        }
    }
}
