use super::*;

fn bytes_of<T: Plain>(value: &T) -> Vec<u8> {
    // SAFETY: T is Plain (a repr(C) struct of integers and arrays); its
    // bytes, padding included, were zero-initialised by Default.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), std::mem::size_of::<T>()).to_vec() }
}

fn comm16(name: &str) -> [std::os::raw::c_char; 16] {
    let mut out = [0; 16];
    for (o, b) in out.iter_mut().zip(name.bytes()) {
        *o = b as std::os::raw::c_char;
    }
    out
}

fn header(kind: u32, size: usize) -> record_header {
    record_header {
        kind,
        size: size as u32,
        time_ns: 42,
        pid: 100,
        tid: 101,
        comm: comm16("bash"),
        start_ns: 7,
        ns_pid: 1,
        ns_tid: 2,
        pid_ns: 4026531836,
        mnt_ns: 4026531841,
        cgroup_id: 99,
    }
}

fn exec_record(exe: &[u8], argv: &[u8], cwd: &[u8]) -> Vec<u8> {
    let mut r = process_exec_record {
        old_tid: 101,
        exe_dev: (8 << 20) | 1,
        exe_inode: 1234,
        exe_len: exe.len() as u16,
        argv_len: argv.len() as u16,
        cwd_len: cwd.len() as u16,
        ..Default::default()
    };
    let size = std::mem::size_of_val(&r) + exe.len() + argv.len() + cwd.len();
    r.header = header(record_kind::RECORD_PROCESS_EXEC, size);
    let mut out = bytes_of(&r);
    out.extend_from_slice(exe);
    out.extend_from_slice(argv);
    out.extend_from_slice(cwd);
    out
}

#[test]
fn exec_record_decodes_paths_root_first_and_argv_in_order() {
    let bytes = exec_record(b"ls\0bin\0usr\0", b"ls\0-la\0/tmp\0", b"");
    let KernelRecord::ProcessExec { header, exe, exe_file, argv, cwd, old_tid, argv_truncated } =
        decode(&bytes).unwrap()
    else {
        panic!("wrong kind")
    };
    let expected = Header {
        time_ns: 42,
        pid: 100,
        tid: 101,
        comm: "bash".into(),
        start_ns: 7,
        ns_pid: 1,
        ns_tid: 2,
        pid_ns: 4026531836,
        mnt_ns: 4026531841,
        cgroup_id: 99,
    };
    assert_eq!(header, expected);
    assert_eq!(exe_file, FileId::from_kernel((8 << 20) | 1, 1234));
    assert_eq!(exe.display(), "/usr/bin/ls");
    assert_eq!(argv, ["ls", "-la", "/tmp"]);
    assert_eq!(cwd.display(), "/");
    assert_eq!(old_tid, 101);
    assert!(!argv_truncated);
}

#[test]
fn every_truncation_of_a_valid_record_is_rejected_not_panicking() {
    let bytes = exec_record(b"ls\0bin\0", b"ls\0", b"tmp\0");
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len]).is_err(), "accepted {len} of {} bytes", bytes.len());
    }
    assert!(decode(&bytes).is_ok());
}

#[test]
fn size_field_must_match_bytes_received() {
    let mut bytes = exec_record(b"ls\0", b"", b"");
    bytes.push(0);
    assert!(matches!(decode(&bytes), Err(DecodeError::SizeMismatch { .. })));
}

#[test]
fn lengths_that_do_not_add_up_are_rejected() {
    let mut bytes = exec_record(b"ls\0", b"a\0", b"");
    // claim a longer exe path than the bytes that follow
    let off = std::mem::offset_of!(process_exec_record, exe_len);
    bytes[off] = 200;
    assert!(matches!(decode(&bytes), Err(DecodeError::BadLengths { .. })));
}

#[test]
fn unknown_kind_is_rejected() {
    let size = std::mem::size_of::<thread_create_record>();
    let r = thread_create_record { header: header(99, size), ..Default::default() };
    assert_eq!(decode(&bytes_of(&r)), Err(DecodeError::UnknownKind(99)));
}

#[test]
fn oversized_record_is_rejected() {
    let bytes = vec![0u8; RECORD_MAX_SIZE as usize + 1];
    assert!(matches!(decode(&bytes), Err(DecodeError::TooLong { .. })));
}

#[test]
fn thread_and_exit_records_decode() {
    let mut t = thread_create_record::default();
    t.header = header(record_kind::RECORD_THREAD_CREATE, std::mem::size_of_val(&t));
    t.creator_tid = 100;
    assert!(matches!(decode(&bytes_of(&t)), Ok(KernelRecord::ThreadCreate { creator_tid: 100, .. })));

    let mut e = exit_record::default();
    e.header = header(record_kind::RECORD_PROCESS_EXIT, std::mem::size_of_val(&e));
    e.exit_code = 3 << 8;
    assert!(matches!(decode(&bytes_of(&e)), Ok(KernelRecord::ProcessExit { status: 0x300, .. })));
    e.header.kind = record_kind::RECORD_THREAD_EXIT;
    assert!(matches!(decode(&bytes_of(&e)), Ok(KernelRecord::ThreadExit { .. })));
}

#[test]
fn process_create_carries_inherited_exe() {
    let exe = b"python3\0bin\0usr\0";
    let mut r = process_create_record::default();
    r.ppid = 7;
    r.creator_tid = 8;
    r.parent_comm = comm16("python3");
    r.exe_len = exe.len() as u16;
    r.header = header(record_kind::RECORD_PROCESS_CREATE, std::mem::size_of_val(&r) + exe.len());
    let mut bytes = bytes_of(&r);
    bytes.extend_from_slice(exe);
    let KernelRecord::ProcessCreate { ppid, creator_tid, parent_comm, exe, .. } = decode(&bytes).unwrap() else {
        panic!("wrong kind")
    };
    assert_eq!((ppid, creator_tid, parent_comm.as_str()), (7, 8, "python3"));
    assert_eq!(exe.display(), "/usr/bin/python3");
}

#[test]
fn paths_show_deleted_memfd_and_truncation() {
    let flags = |f: u32| f as u8;
    assert_eq!(path(b"x\0tmp\0", flags(record_path_flag::PATH_DELETED)).display(), "/tmp/x (deleted)");
    assert_eq!(path(b"memfd:payload\0", flags(record_path_flag::PATH_DELETED)).display(), "memfd:payload");
    assert_eq!(path(b"f\0deep\0", flags(record_path_flag::PATH_TRUNCATED)).display(), "…/deep/f");
}

#[test]
fn random_bytes_never_panic() {
    // xorshift: deterministic noise, with a valid header size half the time
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 300) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if len >= 8 && next() % 2 == 0 {
            bytes[0..4].copy_from_slice(&((next() % 7) as u32).to_ne_bytes());
            bytes[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
        }
        let _ = decode(&bytes);
    }
}

#[test]
fn tamper_and_remote_thread_records_decode_and_reject_unknown_methods() {
    let mut t = tamper_record::default();
    t.header = header(record_kind::RECORD_PROCESS_TAMPER, std::mem::size_of_val(&t));
    t.creator_pid = 7;
    t.creator_tid = 8;
    t.creator_comm = comm16("gdb");
    t.method = record_tamper_method::TAMPER_PTRACE_SETREGS;
    let KernelRecord::ProcessTamper { creator, .. } = decode(&bytes_of(&t)).unwrap() else { panic!("wrong kind") };
    assert_eq!(creator, Creator { pid: 7, tid: 8, comm: "gdb".into(), method: TamperMethod::PtraceSetRegs });
    t.method = 99;
    assert_eq!(decode(&bytes_of(&t)), Err(DecodeError::UnknownMethod(99)));

    let mut r = remote_thread_record::default();
    r.header = header(record_kind::RECORD_REMOTE_THREAD, std::mem::size_of_val(&r));
    r.target_creator_tid = 100;
    r.creator_pid = 7;
    r.creator_tid = 9;
    r.method = record_tamper_method::TAMPER_PROCESS_VM_WRITEV;
    r.tamper_time_ns = 5;
    let KernelRecord::RemoteThread { target_creator_tid, creator, tamper_time_ns, .. } = decode(&bytes_of(&r)).unwrap()
    else {
        panic!("wrong kind")
    };
    assert_eq!((target_creator_tid, creator.pid, creator.tid, tamper_time_ns), (100, 7, 9, 5));
    assert_eq!(creator.method, TamperMethod::ProcessVmWritev);
}

fn image_record(via: u8, flags: u8, ns_path: &[u8], fs_path: &[u8]) -> Vec<u8> {
    let mut r = image_load_record::default();
    r.base = 0x7f3a_1c20_0000;
    r.size = 0x1e_2000;
    r.dev = (254 << 20) | 1;
    r.inode = 326_279;
    r.via = via;
    r.flags = flags;
    r.path_len = ns_path.len() as u16;
    r.fs_path_len = fs_path.len() as u16;
    r.header = header(record_kind::RECORD_IMAGE_LOAD, std::mem::size_of_val(&r) + ns_path.len() + fs_path.len());
    let mut out = bytes_of(&r);
    out.extend_from_slice(ns_path);
    out.extend_from_slice(fs_path);
    out
}

#[test]
fn image_load_decodes_base_size_identity_and_path() {
    let via = record_image_via::IMAGE_VIA_MMAP as u8;
    let bytes = image_record(via, 0, b"libc.so.6\0x86_64-linux-gnu\0lib\0usr\0", b"");
    let KernelRecord::ImageLoad { header, base, size, file, path, fs_path, via, blocked } = decode(&bytes).unwrap()
    else {
        panic!("wrong kind")
    };
    assert_eq!(header.pid, 100);
    assert_eq!((base, size), (0x7f3a_1c20_0000, 0x1e_2000));
    assert_eq!(file, FileId { dev: libc::makedev(254, 1), ino: 326_279 });
    assert_eq!(path.display(), "/usr/lib/x86_64-linux-gnu/libc.so.6");
    assert_eq!(fs_path, None);
    assert_eq!(via, ImageVia::Mmap);
    assert!(!blocked);
}

#[test]
fn image_load_in_another_mount_namespace_carries_both_paths() {
    let flags = (record_image_flag::IMAGE_OTHER_MOUNT_NS | record_image_flag::IMAGE_BLOCKED) as u8;
    let via = record_image_via::IMAGE_VIA_EXEC as u8;
    let bytes = image_record(via, flags, b"prog\0mnt\0", b"prog\0dir\0tmp\0");
    let KernelRecord::ImageLoad { path, fs_path, via, blocked, .. } = decode(&bytes).unwrap() else {
        panic!("wrong kind")
    };
    assert_eq!(path.display(), "/mnt/prog");
    assert_eq!(fs_path.unwrap().display(), "/tmp/dir/prog");
    assert_eq!(via, ImageVia::Exec);
    assert!(blocked);
}

#[test]
fn image_load_with_bad_via_or_stray_fs_path_is_rejected() {
    let bytes = image_record(9, 0, b"x\0", b"");
    assert_eq!(decode(&bytes), Err(DecodeError::UnknownValue { what: "image-load via", value: 9 }));
    let via = record_image_via::IMAGE_VIA_MMAP as u8;
    assert!(matches!(decode(&image_record(via, 0, b"x\0", b"y\0")), Err(DecodeError::UnknownValue { .. })));
    let bytes = image_record(via, 0, b"x\0tmp\0", b"");
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len]).is_err(), "accepted {len} of {} bytes", bytes.len());
    }
}

#[test]
fn comm_stops_at_the_first_nul_or_the_end_and_replaces_bad_bytes() {
    let raw =
        |bytes: &[u8]| -> Vec<std::os::raw::c_char> { bytes.iter().map(|&b| b as std::os::raw::c_char).collect() };
    assert_eq!(super::comm(&raw(b"bash\0junk\0\0\0\0\0\0\0")), "bash");
    assert_eq!(super::comm(&raw(b"sixteen-letters!")), "sixteen-letters!");
    assert_eq!(super::comm(&raw(b"a\xffb\0")), "a\u{fffd}b");
    assert_eq!(super::comm(&raw(b"\0")), "");
}
