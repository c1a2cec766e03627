//! Whether this kernel runs BPF LSM programs and BPF trampolines
//! (fentry/fexit), found by trying: a kernel can list `bpf` among its LSMs
//! and still refuse such programs (a lockdown, a security policy), so a
//! tiny program is loaded and attached for real, and detached at once.
//!
//! The LSM test program returns 0 from `bprm_check_security` (allow), the
//! fentry one does nothing: attaching them for a moment changes nothing.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use libbpf_rs::btf::types::Func;
use libbpf_rs::btf::Btf;
use libbpf_rs::libbpf_sys;

use crate::features::{KernelFeatures, HIDE_ENV};
use crate::kernel_fs;

/// The name under which tests hide BPF LSM ([`HIDE_ENV`]).
pub const BPF_LSM: &str = "bpf_lsm";
/// The name under which tests hide BPF trampolines ([`HIDE_ENV`]).
pub const TRAMPOLINES: &str = "bpf_trampoline";

/// The kernel's active LSMs, in order.
const LSM_LIST: &str = "lsm";
/// The hook the LSM test program attaches to.
const LSM_TEST_HOOK: &str = "bprm_check_security";
/// The function the fentry test program attaches to.
const FENTRY_TEST_FUNCTION: &str = "security_mmap_file";

/// Whether BPF LSM programs load and attach here, or why not.
pub fn lsm_usable(features: &KernelFeatures) -> Result<(), String> {
    if features.is_hidden(BPF_LSM) {
        return Err(format!("{BPF_LSM} is hidden by {HIDE_ENV}"));
    }
    kernel_fs::ensure_securityfs().map_err(|e| format!("cannot read the active LSMs: {e}"))?;
    let path = format!("{}/{LSM_LIST}", kernel_fs::SECURITYFS);
    let active = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    if !active.trim().split(',').any(|lsm| lsm == "bpf") {
        return Err(format!(
            "bpf is not an active LSM ({path}: {}); boot with lsm={},bpf",
            active.trim(),
            active.trim()
        ));
    }
    try_attach(
        libbpf_sys::BPF_PROG_TYPE_LSM,
        libbpf_sys::BPF_LSM_MAC,
        &format!("bpf_lsm_{LSM_TEST_HOOK}"),
        "BPF LSM program",
    )
}

/// Whether fentry/fexit programs (BPF trampolines) load and attach here,
/// or why not.
pub fn trampolines_usable(features: &KernelFeatures) -> Result<(), String> {
    if features.is_hidden(TRAMPOLINES) {
        return Err(format!("{TRAMPOLINES} is hidden by {HIDE_ENV}"));
    }
    try_attach(libbpf_sys::BPF_PROG_TYPE_TRACING, libbpf_sys::BPF_TRACE_FENTRY, FENTRY_TEST_FUNCTION, "fentry program")
}

/// Load `r0 = 0; exit` as a `prog_type` program for the kernel function
/// `target`, attach it, and drop both.
fn try_attach(
    prog_type: libbpf_sys::bpf_prog_type,
    attach_type: libbpf_sys::bpf_attach_type,
    target: &str,
    what: &str,
) -> Result<(), String> {
    let btf = Btf::from_vmlinux().map_err(|e| format!("cannot read the kernel's BTF: {e}"))?;
    let Some(func) = btf.type_by_name::<Func<'_>>(target) else {
        return Err(format!("the kernel has no {target} to attach a {what} to"));
    };
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
        expected_attach_type: attach_type,
        attach_btf_id: u32::from(func.type_id()),
        ..Default::default()
    };
    let insns = [insn(0xb7), insn(0x95)]; // mov64 r0, 0; exit
    let name = CString::new("rsysmon_probe").expect("no NUL");
    let license = CString::new("GPL").expect("no NUL");
    // SAFETY: every pointer is valid for the call: NUL-terminated strings,
    // `insns` with its length, and `opts` sized by its `sz`.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            prog_type,
            name.as_ptr(),
            license.as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    if fd < 0 {
        return Err(format!("the kernel refused a {what} (load: {})", io::Error::from_raw_os_error(-fd)));
    }
    // SAFETY: a new fd the call returned, owned by nothing else.
    let prog = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: a valid program fd; NULL options are allowed.
    let link = unsafe { libbpf_sys::bpf_link_create(fd, 0, attach_type, std::ptr::null()) };
    drop(prog);
    if link < 0 {
        return Err(format!("the kernel refused to attach a {what} (attach: {})", io::Error::from_raw_os_error(-link)));
    }
    // SAFETY: a new fd the call returned; closing it detaches the program.
    drop(unsafe { OwnedFd::from_raw_fd(link) });
    Ok(())
}

/// One instruction with no registers, offset or immediate.
fn insn(code: u8) -> libbpf_sys::bpf_insn {
    libbpf_sys::bpf_insn { code, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn hidden_mechanisms_say_so() {
        let hidden: BTreeSet<String> = [BPF_LSM.to_string(), TRAMPOLINES.to_string()].into();
        let features = KernelFeatures::new([], hidden);
        assert_eq!(lsm_usable(&features).unwrap_err(), format!("bpf_lsm is hidden by {HIDE_ENV}"));
        assert_eq!(trampolines_usable(&features).unwrap_err(), format!("bpf_trampoline is hidden by {HIDE_ENV}"));
    }
}
