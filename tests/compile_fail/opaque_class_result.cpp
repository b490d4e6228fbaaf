// A trivially copyable class that is not a plain struct (constructors,
// private fields) hides its invariants: its bytes are not copied from a
// worker, it needs a serialize().
// expect: the result type is not serializable: it is trivially copyable but not a plain struct
#include <coexec/detail/codec/remote_call.hpp>

class celsius {
  public:
    explicit celsius(double d) : m_degrees(d < -273.15 ? -273.15 : d) {}
    double degrees() const { return m_degrees; }

  private:
    double m_degrees;
};

celsius warm(int) {
    return celsius(21.0);
}

int main() {
    coexec::detail::check_remote_callable<decltype(&warm), int>();
}
