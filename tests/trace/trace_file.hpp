// tests/trace/trace_file.hpp — reading a coexec::trace file back in tests:
// parse it (strictly) and index its events by phase, name and id.
#pragma once

#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "json_reader.hpp"
#include "temp_dir.hpp"

namespace coexec_test {

/// This test process's directory for trace files, removed with them when the
/// process that made it exits normally (a forked child that calls exit()
/// leaves it alone), so repeated runs leave nothing in /tmp.
inline const std::string& trace_dir() {
    static const temp_dir dir("coexec_test_trace");
    return dir.path();
}

/// A unique path for one test's trace file ("%p": the recording process's pid).
inline std::string trace_path(const std::string& test) {
    return trace_dir() + "/" + test + "_%p.json";
}

struct trace_file {
    json doc;
    std::vector<json> events;

    explicit trace_file(const std::string& path) : trace_file(parse_json_file(path)) {}
    explicit trace_file(json d) : doc(std::move(d)) {
        for (const json& e : doc["traceEvents"].array())
            events.push_back(e);
    }

    /// A file cut short (its writer was killed): its text with the event
    /// array and the object closed, parsed strictly as always. Throws if
    /// the file is not a whole number of events.
    static trace_file cut_short(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return trace_file(parse_json(ss.str() + "\n]}"));
    }

    std::vector<json> where(const std::string& ph, const std::string& name = {}) const {
        std::vector<json> out;
        for (const json& e : events)
            if (e.str("ph") == ph && (name.empty() || e.str("name") == name)) out.push_back(e);
        return out;
    }
    /// Complete slices whose name contains `part`.
    std::vector<json> slices_named(const std::string& part) const {
        std::vector<json> out;
        for (const json& e : events)
            if (e.str("ph") == "X" && e.str("name").find(part) != std::string::npos)
                out.push_back(e);
        return out;
    }
    /// thread_name / process_name metadata: (pid, tid) → name.
    std::map<std::pair<double, double>, std::string> names(const std::string& meta) const {
        std::map<std::pair<double, double>, std::string> out;
        for (const json& e : where("M", meta))
            out[{e["pid"].number(), e["tid"].number()}] = e["args"].str("name");
        return out;
    }
    /// The ids of the flow events of phase `ph` ("s", "t" or "f").
    std::multiset<std::string> flow_ids(const std::string& ph) const {
        std::multiset<std::string> out;
        for (const json& e : where(ph))
            out.insert(e["id"].is_string() ? e["id"].string() : std::to_string(e["id"].number()));
        return out;
    }
    double dropped() const { return std::stod(doc["otherData"].str("dropped_events")); }
};

inline std::string id_of(const json& e) {
    return e["id"].is_string() ? e["id"].string() : std::to_string(e["id"].number());
}

}  // namespace coexec_test
