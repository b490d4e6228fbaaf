# What samples/server needs, decided once: included by samples/server/CMakeLists.txt
# and by tests/CMakeLists.txt (which registers the server's tests and is
# processed first). Sets COEXEC_SERVER_BUILDABLE, or COEXEC_SERVER_MISSING to say why not.
set(COEXEC_SERVER_BUILDABLE OFF)
if(NOT TARGET coexec::boost_asio)
    set(COEXEC_SERVER_MISSING "coexec::boost_asio (Boost 1.81 or later: Debian libboost1.81-dev)")
    return()
endif()
find_package(boost_url ${Boost_VERSION} EXACT CONFIG QUIET)
find_package(CLI11 CONFIG QUIET)
if(NOT boost_url_FOUND OR NOT CLI11_FOUND)
    set(COEXEC_SERVER_MISSING "Boost.URL and CLI11 (Debian libboost-url1.81-dev and libcli11-dev)")
    return()
endif()
set(COEXEC_SERVER_BUILDABLE ON)
