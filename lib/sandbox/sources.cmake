target_sources(coexec PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/limits.cpp
    ${CMAKE_CURRENT_LIST_DIR}/limits.hpp
    ${CMAKE_CURRENT_LIST_DIR}/sandbox.cpp
    ${CMAKE_CURRENT_LIST_DIR}/sandbox.hpp
    ${CMAKE_CURRENT_LIST_DIR}/seccomp_filter.cpp
    ${CMAKE_CURRENT_LIST_DIR}/seccomp_filter.hpp
)
