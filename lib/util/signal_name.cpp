#include "util/signal_name.hpp"

#include <string.h>  // sigabbrev_np (glibc >= 2.32)

namespace coexec::detail {

std::string signal_name(int sig) {
    if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
    return "signal " + std::to_string(sig);
}

}  // namespace coexec::detail
