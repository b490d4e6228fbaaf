// tests/support/temp_dir.hpp — a temporary directory for one test (or one
// test process), removed with everything in it when it goes out of scope.
//
// Only by the process that made it: a forked child that leaves the scope or
// calls exit() leaves it to its parent.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace coexec_test {

class temp_dir {
  public:
    /// Makes <temp>/<prefix>-XXXXXX (std::filesystem::temp_directory_path).
    explicit temp_dir(const std::string& prefix = "coexec-test") {
        std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
        if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + tmpl);
        m_path = tmpl;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        if (::getpid() != m_owner) return;
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }

    const std::string& path() const noexcept { return m_path; }
    /// The path of `name` inside it.
    std::string file(const std::string& name) const { return m_path + "/" + name; }

  private:
    std::string m_path;
    pid_t m_owner = ::getpid();
};

}  // namespace coexec_test
