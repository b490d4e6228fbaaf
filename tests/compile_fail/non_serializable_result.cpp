// A result type without serialization cannot come back from a process worker.
// expect: the result type is not serializable
#include <coexec/detail/codec/remote_call.hpp>

#include <string>
#include <utility>

class report {  // private fields, a constructor, and no serialize()
  public:
    explicit report(std::string t) : text(std::move(t)) {}

  private:
    std::string text;
};

report make_report(int n) {
    return report(std::to_string(n));
}

int main() {
    coexec::detail::check_remote_callable<decltype(&make_report), int>();
}
