// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The one BPF object rsysmon loads. Each capability lives in its own header
 * so that all programs share one ring buffer and one set of counters.
 *
 * The include order matters twice:
 * - injection.bpf.h declares the `takeovers` map that the fork probe in
 *   process.bpf.h reads, so it comes before it.
 * - process.bpf.h and image.bpf.h both attach to sched_process_exec. The
 *   skeleton attaches programs in the order they are defined, and the
 *   kernel runs the programs of one tracepoint in the order they were
 *   attached: process.bpf.h first makes a process-exec record precede the
 *   image-load records of the program it started.
 */
#include "common.bpf.h"
#include "injection.bpf.h"
/* Loaded instead of injection.bpf.h's tracepoints where trampolines work. */
#include "injection_fexit.bpf.h"
#include "process.bpf.h"
#include "image.bpf.h"
#include "image_store.bpf.h"
/* Loaded instead of the mmap/mprotect tracepoints where fexit works. */
#include "image_fexit.bpf.h"
/* Uses image.bpf.h's blocked_files; loaded only where BPF LSM works. */
#include "enforce_lsm.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
