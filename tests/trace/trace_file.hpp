// tests/trace/trace_file.hpp — reading a coexec::trace file back in tests:
// parse it (strictly) and index its events by phase, name and id.
#pragma once

#include <catch2/catch.hpp>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "json_reader.hpp"

namespace coexec_test {

/// A unique path for one test's trace file ("%p": the recording process's pid).
inline std::string trace_path(const std::string& test) {
    return "/tmp/coexec_test_trace_" + test + "_%p.json";
}

struct trace_file {
    json doc;
    std::vector<json> events;

    explicit trace_file(const std::string& path) : doc(parse_json_file(path)) {
        for (const json& e : doc["traceEvents"].array())
            events.push_back(e);
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
