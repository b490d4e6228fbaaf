target_sources(coexec PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/codec.cpp
)
