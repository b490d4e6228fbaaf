# Findasio.cmake — standalone Asio (header-only; Debian: libasio-dev), which
# ships no CMake package of its own. Used by coexec's build and installed
# beside coexec-config.cmake, whose find_dependency(asio) loads it.
#
# Defines asio_FOUND, asio_VERSION, asio_INCLUDE_DIR and the imported target
# asio::asio (include directory plus Threads::Threads).
find_path(asio_INCLUDE_DIR NAMES asio.hpp asio/version.hpp)
mark_as_advanced(asio_INCLUDE_DIR)

if(asio_INCLUDE_DIR AND EXISTS "${asio_INCLUDE_DIR}/asio/version.hpp")
    # #define ASIO_VERSION 102201 // 1.22.1
    file(STRINGS "${asio_INCLUDE_DIR}/asio/version.hpp" _asio_version_line
        REGEX "^#define ASIO_VERSION [0-9]+")
    string(REGEX REPLACE "^#define ASIO_VERSION ([0-9]+).*" "\\1" _asio_v "${_asio_version_line}")
    math(EXPR _asio_major "${_asio_v} / 100000")
    math(EXPR _asio_minor "${_asio_v} / 100 % 1000")
    math(EXPR _asio_patch "${_asio_v} % 100")
    set(asio_VERSION "${_asio_major}.${_asio_minor}.${_asio_patch}")
    unset(_asio_version_line)
    unset(_asio_v)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(asio
    REQUIRED_VARS asio_INCLUDE_DIR
    VERSION_VAR asio_VERSION
    REASON_FAILURE_MESSAGE "standalone Asio's asio.hpp was not found (Debian: apt install libasio-dev), \
which coexec::asio needs (Boost.Asio is coexec::boost_asio, a separate component).")

if(asio_FOUND AND NOT TARGET asio::asio)
    find_package(Threads REQUIRED)
    add_library(asio::asio INTERFACE IMPORTED)
    set_target_properties(asio::asio PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${asio_INCLUDE_DIR}")
    target_link_libraries(asio::asio INTERFACE Threads::Threads)
endif()
