// Include in exactly one translation unit per test program.
//
// libstdc++ is not built with ThreadSanitizer, so the reference count inside
// a std::exception_ptr is invisible to it: when a future's exception is
// rethrown and caught on one thread and its last reference is dropped on the
// pool's thread, TSan reports the exception's destruction as racing with the
// catch block's reads, although the (uninstrumented) atomic count orders them.
// This suppresses exactly that report.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define COEXEC_TSAN_SUPPRESS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define COEXEC_TSAN_SUPPRESS 1
#endif
#endif

#if defined(COEXEC_TSAN_SUPPRESS)
extern "C" const char* __tsan_default_suppressions() {
    return "race:std::__exception_ptr::exception_ptr::_M_release\n";
}
#endif
