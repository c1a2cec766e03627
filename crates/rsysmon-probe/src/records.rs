//! Layouts of the records the probes write, generated from `records.h`.
//!
//! Only plain integers and byte arrays: every bit pattern is a valid value,
//! which is what lets the decoder read them out of untrusted bytes.
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case, dead_code, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/records.rs"));
