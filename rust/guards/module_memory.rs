//! Where a loaded library keeps its data: its writable segments (static variables) and the
//! calling thread's block of its `thread_local` variables, from `dl_iterate_phdr`.
//!
//! The global-state reader uses these ranges to locate a torch flag by flipping it (the
//! one bit that changes), so that the flag is then read from memory instead of through
//! its getter on every call. Nothing here reads the memory; callers scan the ranges.

use std::ffi::{c_char, c_int, c_void, CStr};

const PT_LOAD: u32 = 1;
const PT_TLS: u32 = 7;
const PF_W: u32 = 2;

#[repr(C)]
struct Elf64Phdr {
    p_type: u32,
    p_flags: u32,
    p_offset: u64,
    p_vaddr: u64,
    p_paddr: u64,
    p_filesz: u64,
    p_memsz: u64,
    p_align: u64,
}

/// glibc's `struct dl_phdr_info` (64-bit).
#[repr(C)]
struct DlPhdrInfo {
    dlpi_addr: u64,
    dlpi_name: *const c_char,
    dlpi_phdr: *const Elf64Phdr,
    dlpi_phnum: u16,
    dlpi_adds: u64,
    dlpi_subs: u64,
    dlpi_tls_modid: usize,
    dlpi_tls_data: *mut c_void,
}

type Callback = unsafe extern "C" fn(*mut DlPhdrInfo, usize, *mut c_void) -> c_int;

extern "C" {
    fn dl_iterate_phdr(callback: Callback, data: *mut c_void) -> c_int;
}

/// The ranges of one library, for the calling thread.
#[derive(Default, Debug)]
pub(crate) struct ModuleMemory {
    /// (start, length) of each writable loaded segment.
    pub writable: Vec<(usize, usize)>,
    /// (start, length) of this thread's TLS block, if the library has one and this thread
    /// has allocated it.
    pub tls: Option<(usize, usize)>,
}

struct Query<'a> {
    suffix: &'a str,
    found: Option<ModuleMemory>,
}

unsafe extern "C" fn visit(info: *mut DlPhdrInfo, size: usize, data: *mut c_void) -> c_int {
    // SAFETY: glibc passes a valid info of `size` bytes and our `data` pointer; fields past
    // `size` are not read.
    unsafe {
        let q = &mut *(data as *mut Query<'_>);
        if size < std::mem::size_of::<DlPhdrInfo>() || (*info).dlpi_name.is_null() {
            return 0;
        }
        let info = &*info;
        let name = CStr::from_ptr(info.dlpi_name).to_string_lossy();
        if !name.ends_with(q.suffix) {
            return 0;
        }
        let mut m = ModuleMemory::default();
        for i in 0..usize::from(info.dlpi_phnum) {
            let ph = &*info.dlpi_phdr.add(i);
            if ph.p_type == PT_LOAD && ph.p_flags & PF_W != 0 {
                m.writable
                    .push(((info.dlpi_addr + ph.p_vaddr) as usize, ph.p_memsz as usize));
            } else if ph.p_type == PT_TLS && !info.dlpi_tls_data.is_null() {
                m.tls = Some((info.dlpi_tls_data as usize, ph.p_memsz as usize));
            }
        }
        q.found = Some(m);
        1
    }
}

/// The memory of the loaded library whose path ends with `/name` (e.g. `libc10.so`).
pub(crate) fn module_memory(name: &str) -> Option<ModuleMemory> {
    let suffix = format!("/{name}");
    let mut q = Query {
        suffix: &suffix,
        found: None,
    };
    // SAFETY: `visit` only reads the infos glibc passes and writes into `q`, which outlives
    // the call.
    unsafe { dl_iterate_phdr(visit, (&mut q as *mut Query<'_>).cast()) };
    q.found
}
