//! Builds the BPF object with clang (through libbpf-cargo), generates its
//! skeleton, and generates the Rust layouts of the ring-buffer records from
//! the same C header the probes use.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const BPF_DIR: &str = "src/bpf";
const BPF_SOURCE: &str = "src/bpf/rsysmon.bpf.c";
const RECORDS_HEADER: &str = "src/bpf/records.h";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    SkeletonBuilder::new()
        .source(BPF_SOURCE)
        .clang_args(["-I", BPF_DIR, "-Wall", "-Werror", "-O2", "-g"])
        .build_and_generate(out.join("rsysmon.skel.rs"))
        .unwrap_or_else(|e| panic!("building the BPF probes failed (is clang installed? run `make deps`): {e:#}"));

    bindgen::Builder::default()
        .header(RECORDS_HEADER)
        .allowlist_type("record_.*|.*_record|blocked_file")
        .allowlist_var("RECORD_.*")
        .constified_enum_module("record_.*")
        .derive_default(true)
        .layout_tests(true)
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "generating record layouts from {RECORDS_HEADER} failed (is libclang installed? run `make deps`): {e}"
            )
        })
        .write_to_file(out.join("records.rs"))
        .expect("writing records.rs");

    for entry in std::fs::read_dir(BPF_DIR).expect("listing src/bpf") {
        println!("cargo:rerun-if-changed={}", entry.expect("dir entry").path().display());
    }
}
