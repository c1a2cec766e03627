// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The one BPF object rsysmon loads. Each capability lives in its own header
 * so that all programs share one ring buffer and one set of counters.
 */
#include "common.bpf.h"
#include "injection.bpf.h"
#include "process.bpf.h"
#include "image.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
