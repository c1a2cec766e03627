//! The libbpf-cargo skeleton of `src/bpf/rsysmon.bpf.c`.
#![allow(clippy::all, missing_docs, non_camel_case_types, non_upper_case_globals, dead_code)]

include!(concat!(env!("OUT_DIR"), "/rsysmon.skel.rs"));
