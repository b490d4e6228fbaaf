// bench/common/python_peer.hpp — run a Python peer (bench/python/*.py) as a
// subprocess and collect the `PY|<key>|<value>` lines it prints.
//
// Python is a peer, not a dependency: if `python3` is not on PATH the caller
// gets std::nullopt and reports the peer as skipped.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#ifndef COEXEC_BENCH_PYTHON_DIR
#error "COEXEC_BENCH_PYTHON_DIR must name bench/python (set by bench/CMakeLists.txt)"
#endif

namespace coexec_bench {

using python_figures = std::map<std::string, double>;

inline bool have_python3() {
    return std::system("command -v python3 >/dev/null 2>&1") == 0;
}

/// Runs `python3 bench/python/<script> <args>`; its stderr (the human summary)
/// passes through. Returns the PY figures, or nullopt if python3 is missing or
/// the script failed (a NOTE says which).
inline std::optional<python_figures> run_python(const std::string& script,
                                                const std::string& args) {
    if (!have_python3()) {
        std::printf("NOTE|python3 not found: the Python peer (%s) was skipped.\n", script.c_str());
        std::printf("  python3 not found: Python peer skipped\n");
        return std::nullopt;
    }
    std::string cmd = "python3 '" COEXEC_BENCH_PYTHON_DIR "/" + script + "' " + args;
    std::fflush(stdout);
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return std::nullopt;
    python_figures out;
    char line[512];
    while (std::fgets(line, sizeof line, p) != nullptr) {
        std::string s(line);
        if (s.rfind("PY|", 0) != 0) continue;
        auto bar = s.find('|', 3);
        if (bar == std::string::npos) continue;
        out[s.substr(3, bar - 3)] = std::strtod(s.c_str() + bar + 1, nullptr);
    }
    if (::pclose(p) != 0) {
        std::printf("NOTE|the Python peer %s %s failed; its rows are missing.\n", script.c_str(),
                    args.c_str());
        return std::nullopt;
    }
    return out;
}

}  // namespace coexec_bench
