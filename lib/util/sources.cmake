target_sources(coexec PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/backoff.hpp
    ${CMAKE_CURRENT_LIST_DIR}/cpus.hpp
    ${CMAKE_CURRENT_LIST_DIR}/demangle.cpp
    ${CMAKE_CURRENT_LIST_DIR}/demangle.hpp
    ${CMAKE_CURRENT_LIST_DIR}/eventfd.hpp
    ${CMAKE_CURRENT_LIST_DIR}/fd_passing.cpp
    ${CMAKE_CURRENT_LIST_DIR}/fd_passing.hpp
    ${CMAKE_CURRENT_LIST_DIR}/per_process.hpp
    ${CMAKE_CURRENT_LIST_DIR}/signal_name.cpp
    ${CMAKE_CURRENT_LIST_DIR}/signal_name.hpp
    ${CMAKE_CURRENT_LIST_DIR}/system_error.cpp
    ${CMAKE_CURRENT_LIST_DIR}/system_error.hpp
    ${CMAKE_CURRENT_LIST_DIR}/unique_fd.hpp
)
