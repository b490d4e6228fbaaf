target_sources(coexec PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/spin.hpp
)
