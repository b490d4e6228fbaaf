// lib/util/signal_name.hpp — a signal's name as people read it ("SIGSEGV").
//
// Used where the library tells a person how a worker ended: worker_died's
// message (lib/core), its cause when a worker was stopped (lib/process) and
// the trace's death markers (lib/trace).
#pragma once

#include <string>

namespace coexec::detail {

/// "SIG" and the signal's abbreviation, e.g. "SIGSEGV"; "signal N" for a
/// number without one. Throws std::bad_alloc only.
std::string signal_name(int sig);

}  // namespace coexec::detail
